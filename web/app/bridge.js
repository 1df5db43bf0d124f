// The Streamlit component protocol (components.v1), by hand: no React, no npm package.
// The page says it is ready, Streamlit sends "render" with the Python arguments, and the page
// sends back a value (a JSON object) and its height.

function send(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

/** Listen for Streamlit's renders: `onRender(args)` gets the Python keyword arguments. */
export function connect(onRender) {
  window.addEventListener("message", (e) => {
    if (e.data && e.data.type === "streamlit:render") onRender(e.data.args || {});
  });
  send("streamlit:componentReady", { apiVersion: 1 });
  // keep the iframe as tall as the page inside it
  let last = -1;
  const fit = () => {
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (h !== last) { last = h; send("streamlit:setFrameHeight", { height: h }); }
  };
  new ResizeObserver(fit).observe(document.body);
  fit();
}

/** Send the component's value to Python (one rerun of the page each time: only on news). */
export function setValue(value) {
  send("streamlit:setComponentValue", { value, dataType: "json" });
}
