// Progressive enhancement only: every page works without this file.
document.documentElement.classList.add("js");

// A select with data-shows-fieldsets shows only the fieldsets made for its value
// (data-for="SELECT_ID" data-values="v1 v2"); without JavaScript all of them show.
for (const select of document.querySelectorAll("select[data-shows-fieldsets]")) {
  const sets = document.querySelectorAll(`fieldset[data-for="${select.id}"]`);
  const show = () => {
    for (const set of sets) set.hidden = !set.dataset.values.split(" ").includes(select.value);
  };
  select.addEventListener("change", show);
  show();
}

// Instants: shown in the browser's time zone (the server writes UTC).
// data-local="time": the time alone when it falls on today ("Paused ... until 14:05").
const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
for (const time of document.querySelectorAll("time[data-local]")) {
  const at = new Date(time.dateTime);
  const today = at.toDateString() === new Date().toDateString();
  time.textContent = (time.dataset.local === "time" && today ? clock : format).format(at);
  time.title = time.dateTime;
}

// Member pickers: filter the rows as the admin types, and move a row between the
// Available and Assigned lists when its box is ticked.
for (const picker of document.querySelectorAll("[data-picker]")) {
  const search = picker.querySelector("input[type=search]");
  const assigned = picker.querySelector("[data-list=assigned]");
  const available = picker.querySelector("[data-list=available]");
  for (const box of picker.querySelectorAll("input[type=checkbox]")) {
    box.addEventListener("change", () => {
      (box.checked ? assigned : available).append(box.closest("li"));
    });
  }
  if (search) {
    const filter = () => {
      const words = search.value.trim().toLowerCase();
      for (const row of available.querySelectorAll("li")) {
        row.hidden = words !== "" && !row.textContent.toLowerCase().includes(words);
      }
    };
    search.addEventListener("input", filter);
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); filter(); }
    });
  }
}
