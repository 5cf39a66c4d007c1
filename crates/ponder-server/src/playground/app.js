// The Ponder playground: a chat over /v1/chat/completions (streamed, with usage) that shows
// the thinking apart from the answer, marks where budget forcing stepped in, and sets every
// budget control. Model output is only ever written as text (textContent / text nodes).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORAGE = "ponder.apiKey";
  /** Earlier turns, as the API takes them. */
  const history = [];
  /** The request in flight: {controller, id, turn}. */
  let running = null;
  let modelName = "";

  // ---- settings -------------------------------------------------------------------------

  function apiKey() {
    return $("api-key").value.trim();
  }

  function headers(json) {
    const h = {};
    if (json) h["Content-Type"] = "application/json";
    if (apiKey()) h["Authorization"] = "Bearer " + apiKey();
    return h;
  }

  /** The number in field `id`, or undefined when it is empty. */
  function number(id) {
    const text = $(id).value.trim();
    return text === "" ? undefined : Number(text);
  }

  /** Parses the JSON in field `id`, naming the field when it does not parse. */
  function json(id, what) {
    const text = $(id).value.trim();
    if (text === "") return undefined;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(what + " is not valid JSON: " + e.message);
    }
  }

  /** The request body for `messages`, from the settings. */
  function buildRequest(messages) {
    const body = { messages, stream: true, stream_options: { include_usage: true } };
    if (modelName) body.model = modelName;
    const fields = { max_tokens: "max-tokens", temperature: "temperature", top_p: "top-p", seed: "seed" };
    for (const [name, id] of Object.entries(fields)) {
      const value = number(id);
      if (value !== undefined) body[name] = value;
    }
    if (!$("thinking-on").checked) {
      body.thinking = false;
    } else {
      const thinking = {};
      const min = number("min-tokens"), max = number("max-tokens-thinking"), reserve = number("answer-reserve");
      if (min !== undefined) thinking.min_tokens = min;
      if (max !== undefined) thinking.max_tokens = max;
      if (reserve !== undefined) thinking.answer_reserve = reserve;
      if ($("continuation").value !== "") thinking.continuation = $("continuation").value;
      body.thinking = Object.keys(thinking).length ? thinking : true;
    }
    const schema = json("schema", "The JSON schema");
    if (schema !== undefined) {
      body.response_format = { type: "json_schema", json_schema: { name: "answer", schema } };
    }
    const tools = json("tools", "The tools");
    if (tools !== undefined) {
      if (!Array.isArray(tools)) throw new Error("The tools must be a JSON array.");
      body.tools = tools;
    }
    return body;
  }

  // ---- showing things -------------------------------------------------------------------

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  /** An API error body ({error: {message, type, param}}) as the API returned it. */
  function describeError(status, body) {
    const error = body && body.error ? body.error : body;
    if (!error || typeof error !== "object") return "HTTP " + status;
    let text = "HTTP " + status + (error.type ? " " + error.type : "") + ": " + (error.message || "");
    if (error.param) text += " (" + error.param + ")";
    if (status === 401) text += "\nEnter the server's API key under Access.";
    return text;
  }

  async function showResponseError(response) {
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      // Not JSON: the status says enough.
    }
    showError(describeError(response.status, body));
    if (response.status === 401) $("api-key").focus();
  }

  function appendUser(text) {
    const item = document.createElement("li");
    item.className = "turn user";
    item.textContent = text;
    $("log").append(item);
    item.scrollIntoView({ block: "end" });
  }

  /** A new assistant turn and the means to fill it. */
  function assistantTurn(maxThinking) {
    const node = $("assistant-turn").content.firstElementChild.cloneNode(true);
    $("log").append(node);
    const reasoning = node.querySelector(".reasoning");
    const reasoningText = node.querySelector(".reasoning-text");
    const counter = node.querySelector(".counter");
    const answer = node.querySelector(".answer");
    const calls = [];
    const turn = {
      node,
      answer: "",
      liveTokens: 0,
      setCounter(tokens, exact) {
        counter.dataset.tokens = String(tokens);
        counter.dataset.exact = exact ? "true" : "false";
        const cap = maxThinking === undefined ? "" : " / " + maxThinking;
        counter.textContent = (exact ? "" : "~") + tokens + cap + " tokens";
      },
      addReasoning(text) {
        reasoningText.append(document.createTextNode(text));
        turn.liveTokens += 1;
        turn.setCounter(turn.liveTokens, false);
      },
      addMark(mark) {
        const span = document.createElement("span");
        span.className = "mark" + (mark.type === "forced_end" ? " forced" : "");
        span.dataset.mark = mark.type;
        span.textContent = mark.type === "continuation" ? "↻ continuation" : "■ end forced (" + mark.end + ")";
        span.title =
          mark.type === "continuation"
            ? "The model tried to stop thinking below the minimum; Ponder put the continuation in its place."
            : "Ponder ended the thinking here (" + mark.end + ").";
        reasoningText.append(span);
      },
      addAnswer(text) {
        turn.answer += text;
        answer.append(document.createTextNode(text));
      },
      addToolCall(delta) {
        const call = (calls[delta.index] ||= { name: "", arguments: "", pre: null });
        if (delta.function && delta.function.name) call.name += delta.function.name;
        if (delta.function && delta.function.arguments) call.arguments += delta.function.arguments;
        if (!call.pre) {
          call.pre = document.createElement("pre");
          node.querySelector(".calls").append(call.pre);
        }
        call.pre.textContent = "tool call: " + call.name + "(" + call.arguments + ")";
      },
      finishThinking(summary) {
        turn.setCounter(summary.tokens, true);
        if (summary.tokens === 0 && reasoningText.childNodes.length === 0) reasoning.hidden = true;
      },
      noThinking() {
        if (reasoningText.childNodes.length === 0) reasoning.hidden = true;
      },
      note(text) {
        const p = node.querySelector(".stats");
        p.textContent = p.textContent ? p.textContent + " · " + text : text;
      },
    };
    turn.setCounter(0, false);
    return turn;
  }

  function setRunning(on) {
    $("send").disabled = on;
    $("stop").disabled = !on;
    $("end-thinking").disabled = true;
  }

  // ---- the request ----------------------------------------------------------------------

  /** Reads a server-sent event stream, calling `onData` with each event's data. */
  async function readEvents(response, onData) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data && data !== "[DONE]") onData(JSON.parse(data));
      }
    }
  }

  async function send(text) {
    clearError();
    const messages = [];
    const system = $("system").value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...history, { role: "user", content: text });
    let body;
    try {
      body = buildRequest(messages);
    } catch (e) {
      showError(e.message);
      return;
    }
    $("prompt").value = "";
    appendUser(text);
    const maxThinking = body.thinking && body.thinking.max_tokens;
    const turn = assistantTurn(maxThinking);
    const controller = new AbortController();
    running = { controller, id: null, turn };
    setRunning(true);
    const started = performance.now();
    let first = null, last = null, usage = null, thinking = null, answering = false;
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers(true),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        await showResponseError(response);
        turn.node.remove();
        return;
      }
      await readEvents(response, (chunk) => {
        if (chunk.error) {
          showError(describeError(500, chunk));
          return;
        }
        if (running && !running.id && chunk.id) {
          running.id = chunk.id;
          $("end-thinking").disabled = body.thinking === false;
        }
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (choice.thinking_mark) turn.addMark(choice.thinking_mark);
          if (delta.reasoning_content) {
            first ??= performance.now();
            last = performance.now();
            turn.addReasoning(delta.reasoning_content);
          }
          if (delta.content) {
            first ??= performance.now();
            last = performance.now();
            if (!answering) {
              answering = true;
              $("end-thinking").disabled = true;
            }
            turn.addAnswer(delta.content);
          }
          for (const call of delta.tool_calls || []) {
            answering = true;
            turn.addToolCall(call);
          }
          if (choice.thinking) thinking = choice.thinking;
          if (choice.finish_reason && choice.finish_reason !== "stop") turn.note("finish: " + choice.finish_reason);
        }
      });
    } catch (e) {
      if (e.name === "AbortError") turn.note("stopped");
      else showError(String(e));
    } finally {
      running = null;
      setRunning(false);
    }
    if (thinking) turn.finishThinking(thinking);
    else if (body.thinking === false || usage) turn.noThinking();
    if (thinking && thinking.end) turn.note("thinking ended: " + thinking.end);
    if (usage) {
      const details = usage.completion_tokens_details || {};
      const reasoning = details.reasoning_tokens || 0;
      const cached = (usage.prompt_tokens_details || {}).cached_tokens || 0;
      const seconds = first !== null && last > first ? (last - first) / 1000 : 0;
      const rate = seconds > 0 ? (usage.completion_tokens / seconds).toFixed(1) + " tok/s" : "";
      const ttft = first !== null ? ((first - started) / 1000).toFixed(2) + " s to first token" : "";
      const counts = [
        usage.prompt_tokens + " prompt",
        reasoning + " reasoning",
        usage.completion_tokens - reasoning + " answer",
        cached + " cached",
      ];
      turn.note(["tokens: " + counts.join(", "), ttft, rate].filter(Boolean).join(" · "));
    }
    // A turn that gave no answer (stopped early, failed) is not sent back as history.
    if (turn.answer) history.push({ role: "user", content: text }, { role: "assistant", content: turn.answer });
  }

  async function endThinking() {
    if (!running || !running.id) return;
    $("end-thinking").disabled = true;
    const response = await fetch("/v1/chat/completions/" + encodeURIComponent(running.id) + "/end_thinking", {
      method: "POST",
      headers: headers(false),
    });
    if (!response.ok) await showResponseError(response);
  }

  function stop() {
    if (running) running.controller.abort();
  }

  async function loadModel() {
    try {
      const response = await fetch("/v1/models", { headers: headers(false) });
      if (!response.ok) {
        await showResponseError(response);
        return;
      }
      const models = await response.json();
      modelName = (models.data && models.data[0] && models.data[0].id) || "";
      $("model").textContent = modelName;
    } catch (e) {
      showError(String(e));
    }
  }

  // ---- wiring ---------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
    $("api-key").addEventListener("change", () => {
      sessionStorage.setItem(KEY_STORAGE, apiKey());
      clearError();
      loadModel();
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = $("prompt").value.trim();
      if (text && !running) send(text);
    });
    $("prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") stop();
    });
    $("stop").addEventListener("click", stop);
    $("end-thinking").addEventListener("click", endThinking);
    $("clear").addEventListener("click", () => {
      stop();
      history.length = 0;
      $("log").replaceChildren();
      clearError();
    });
    const showSettings = (shown) => {
      $("settings").hidden = !shown;
      $("toggle-settings").setAttribute("aria-expanded", String(shown));
    };
    $("toggle-settings").addEventListener("click", () => showSettings($("settings").hidden));
    // On a phone-sized screen the chat comes first and the settings open on demand.
    if (window.matchMedia("(max-width: 720px)").matches) showSettings(false);
    loadModel();
    $("prompt").focus();
  });
})();
