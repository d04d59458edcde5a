// "Use my location": fills the hidden lat/lon of the centre search and submits it.
// Coordinates are rounded to about 100 m before they leave the phone: ranking needs no more.
const form = document.querySelector("[data-geolocate-form]");
const button = form?.querySelector("[data-geolocate]");
const status = form?.querySelector("[data-geolocate-status]");

function round(value) {
  return (Math.round(value * 1000) / 1000).toFixed(3);
}

if (form && button && "geolocation" in navigator) {
  button.hidden = false;
  button.addEventListener("click", () => {
    button.disabled = true;
    status.textContent = form.dataset.msgWait;
    navigator.geolocation.getCurrentPosition(
      (position) => {
        form.elements.lat.value = round(position.coords.latitude);
        form.elements.lon.value = round(position.coords.longitude);
        form.submit();
      },
      () => {
        button.disabled = false;
        status.textContent = form.dataset.msgFailed;
      },
      { enableHighAccuracy: false, timeout: 10000, maximumAge: 600000 },
    );
  });
}
