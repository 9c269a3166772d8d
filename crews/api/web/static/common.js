// Shared by every page: the API key (sessionStorage), fetch with it, and an SSE reader over fetch.
"use strict";

const KEY = "crews.apiKey";

const crews = {
  key() {
    return sessionStorage.getItem(KEY) || "";
  },

  headers(extra) {
    const headers = Object.assign({ Accept: "application/json" }, extra || {});
    if (crews.key()) headers.Authorization = "Bearer " + crews.key();
    return headers;
  },

  // Ask for the key (once per tab); `onKey` runs again once one is entered.
  askForKey(onKey) {
    const form = document.getElementById("login");
    form.hidden = false;
    crews.live("sign in to see this page", "off");
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, form.elements.key.value.trim());
      form.hidden = true;
      onKey();
    };
  },

  // JSON from the API; null after a 401 (the login form is shown and `retry` runs once signed in).
  async get(path, retry) {
    const response = await fetch(path, { headers: crews.headers() });
    if (response.status === 401) {
      crews.askForKey(retry);
      return null;
    }
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  },

  async post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: crews.headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || path + ": HTTP " + response.status);
    return data;
  },

  // Read a text/event-stream with the key in the header (EventSource cannot send one).
  // Calls onEvent(id, data) per event; resolves with the HTTP status when the stream ends.
  async stream(path, lastId, onEvent, signal) {
    const headers = crews.headers({ Accept: "text/event-stream" });
    if (lastId) headers["Last-Event-ID"] = lastId;
    const response = await fetch(path, { headers, signal });
    if (response.status !== 200 || !response.body) return response.status;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 200;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let id = null;
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("id:")) id = line.slice(3).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(id, data.join("\n"));
      }
    }
  },

  live(text, mode) {
    const badge = document.getElementById("live");
    badge.textContent = text;
    badge.dataset.mode = mode;
  },

  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  usd(amount) {
    const value = Number(amount || 0);
    return "$" + (value < 0.01 ? value.toFixed(6) : value.toFixed(4));
  },

  seconds(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "";
    return value < 60 ? value.toFixed(1) + " s" : Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
  },

  duration(job) {
    if (!job.created_at) return "";
    const end = job.finished_at || Date.now() / 1000;
    return crews.seconds(Math.max(0, end - job.created_at));
  },
};
