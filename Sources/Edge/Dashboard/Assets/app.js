// The mini-baas dashboard: a single page over the node's public admin and tenant APIs.
// Nothing here is privileged: it does what `curl` with the admin token could do. The admin token
// lives only in this page's memory (never in a URL, a cookie or storage), so a reload signs out.
// Every value from the node is written with textContent, never parsed as HTML.
"use strict";

// `generation` counts navigations: work started for an earlier page (a slow fetch, a timer) checks
// it and gives up instead of drawing over the page the user moved on to. `view` is the element the
// current page is drawn into, attached to <main> once it is ready.
const state = { token: null, timers: [], tenantCache: new Map(), generation: 0, view: null };

// ---------------------------------------------------------------------------------------------
// DOM helpers

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "text") element.textContent = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/// replaceChildren that, like h(), takes nested arrays and skips null/false children.
function put(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
}

const main = () => state.view || document.getElementById("main");
let uniqueCounter = 0;
const uniqueID = (prefix) => `${prefix}-${++uniqueCounter}`;

function labelled(text, control) {
  const id = control.id || uniqueID("field");
  control.id = id;
  return [h("label", { for: id }, text), control];
}

function showError(error, fieldError) {
  const text = describeError(error);
  document.getElementById("errors").textContent = text;
  if (fieldError) fieldError.textContent = text;
}

function clearMessages() {
  document.getElementById("errors").textContent = "";
  document.getElementById("status").textContent = "";
}

function say(text) {
  document.getElementById("errors").textContent = "";
  document.getElementById("status").textContent = text;
}

function describeError(error) {
  if (error instanceof ApiError) {
    let text = `${error.code}: ${error.message}`;
    if (error.details) text += ` (at ${typeof error.details === "string" ? error.details : JSON.stringify(error.details)})`;
    if (error.hint) text += ` — ${error.hint}`;
    return text;
  }
  return `Error: ${error && error.message ? error.message : String(error)}`;
}

function formatCell(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "NULL");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function mask(key) {
  if (!key) return "";
  return `${key.slice(0, 6)}…${key.slice(-4)}`;
}

function dataTable(label, columns, rows, cell) {
  return h("table", { "aria-label": label },
    h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col" }, column)))),
    h("tbody", {}, rows.length === 0
      ? h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "None"))
      : rows.map((row) => h("tr", {}, columns.map((column, index) => h("td", {}, cell(row, column, index)))))));
}

/// A table of whatever objects an API listed: scalar fields first-come, nested ones as JSON.
function genericTable(label, items, preferred) {
  const keys = [];
  for (const key of preferred || []) if (items.some((item) => item && key in item)) keys.push(key);
  for (const item of items) {
    for (const key of Object.keys(item || {})) {
      if (!keys.includes(key) && keys.length < 8 && (item[key] === null || typeof item[key] !== "object")) keys.push(key);
    }
  }
  return dataTable(label, keys.length ? keys : ["value"], items, (item, column) => (keys.length ? formatCell(item[column]) : formatCell(item)));
}

function confirmDialog(question, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-labelledby": "confirm-question" },
      h("p", { id: "confirm-question" }, question),
      h("button", { type: "button", class: "danger", onclick: () => finish(true) }, confirmLabel),
      " ",
      h("button", { type: "button", onclick: () => finish(false) }, "Cancel"));
    function finish(answer) {
      dialog.close();
      dialog.remove();
      resolve(answer);
    }
    dialog.addEventListener("cancel", () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/// Runs `work` with `button` disabled and a progress line, then reports what happened.
async function busy(button, progress, work) {
  if (button) button.disabled = true;
  main().setAttribute("aria-busy", "true");
  say(progress);
  try {
    return await work();
  } finally {
    if (button) button.disabled = false;
    main().removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

class ApiError extends Error {
  constructor(status, code, message, details, hint) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.hint = hint;
  }
}

async function send(url, options) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store", credentials: "omit", redirect: "error", ...options });
  } catch (error) {
    throw new ApiError(0, "NETWORK", `cannot reach the node (${error.message})`);
  }
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch (_) { /* not JSON */ }
    const code = (payload && (payload.code || payload.error_code || payload.error)) || `HTTP ${response.status}`;
    const message = (payload && (payload.message || payload.msg || payload.error_description)) || response.statusText || "request failed";
    throw new ApiError(response.status, String(code), String(message), payload && payload.details, payload && payload.hint);
  }
  return response;
}

async function readJSON(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function admin(path, method, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const response = await send(`/admin/v1${path}`, { method: method || "GET", headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return await readJSON(response);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.token) {
      signOut("Invalid admin token: the node refused it, so you were signed out.");
    }
    throw error;
  }
}

async function tenantKeys(slug, fresh) {
  if (!fresh && state.tenantCache.has(slug)) return state.tenantCache.get(slug);
  const tenant = await admin(`/tenants/${encodeURIComponent(slug)}`);
  state.tenantCache.set(slug, tenant);
  return tenant;
}

/// A call to the tenant's own API (`/t/{slug}/…`) as its service role, as Supabase Studio does.
async function tenantCall(slug, path, options) {
  const tenant = await tenantKeys(slug);
  const headers = { apikey: tenant.serviceKey, Authorization: `Bearer ${tenant.serviceKey}`, ...((options && options.headers) || {}) };
  return send(`/t/${encodeURIComponent(slug)}${path}`, { ...(options || {}), headers });
}

// ---------------------------------------------------------------------------------------------
// Routing: #/tenants, #/tenants/{slug}/{tab}, #/supervisor, #/cluster, #/metrics

function stopTimers() {
  state.generation += 1;
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
}

/// Repeats `work` while the page that asked for it is shown and the user is signed in.
function every(milliseconds, work) {
  const generation = state.generation;
  const timer = setInterval(() => {
    if (generation !== state.generation || !state.token) return clearInterval(timer);
    work();
  }, milliseconds);
  state.timers.push(timer);
}

function hashParts() {
  try {
    return location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch (_) {
    return [];  // a malformed escape: show the tenants
  }
}

async function route() {
  stopTimers();
  const generation = state.generation;
  state.view = null;
  if (!state.token) return renderSignIn();
  const parts = hashParts();
  const section = parts[0] || "tenants";
  for (const link of document.querySelectorAll("#global-nav a")) {
    if (link.getAttribute("href") === `#/${section}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = h("div", {});
  state.view = view;
  const shown = document.getElementById("main");
  shown.setAttribute("aria-busy", "true");
  try {
    if (section === "tenants" && parts[1]) await renderTenant(parts[1], parts[2] || "keys");
    else if (section === "supervisor") await renderSupervisor();
    else if (section === "cluster") await renderCluster();
    else if (section === "metrics") await renderMetrics();
    else await renderTenants();
  } catch (error) {
    if (state.token && generation === state.generation) showError(error);
  }
  // The user moved on while this page loaded: the newer navigation draws the page.
  if (generation !== state.generation || !state.token) return;
  shown.removeAttribute("aria-busy");
  put(shown, view);
  const heading = view.querySelector("h1");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function signOut(reason, isError = true) {
  state.token = null;
  state.tenantCache.clear();
  stopTimers();
  state.view = null;
  document.getElementById("main").removeAttribute("aria-busy");
  document.getElementById("global-nav").hidden = true;
  renderSignIn();
  if (reason) document.getElementById(isError ? "errors" : "status").textContent = reason;
}

// ---------------------------------------------------------------------------------------------
// Sign in

function renderSignIn() {
  document.getElementById("global-nav").hidden = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const fieldError = h("p", { class: "field-error", id: "token-error" });
  input.setAttribute("aria-describedby", "token-error");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      fieldError.textContent = "";
      state.token = input.value.trim();
      try {
        await busy(button, "Signing in…", () => admin("/tenants"));
      } catch (error) {
        state.token = null;
        const text = error instanceof ApiError && error.status === 401 ? "Invalid admin token: the node refused it." : describeError(error);
        fieldError.textContent = text;
        document.getElementById("errors").textContent = text;
        document.getElementById("status").textContent = "";
        return;
      }
      clearMessages();
      document.getElementById("global-nav").hidden = false;
      if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/tenants";
      else route();
    },
  }, labelled("Admin token", input), " ", button, fieldError);
  put(main(), 
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Sign in with the node's admin token (MINIBAAS_ADMIN_TOKEN). It stays in this page's memory only."),
    form);
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// Tenants

async function renderTenants() {
  const tenants = await admin("/tenants");
  const view = main();
  put(view, 
    h("h1", {}, "Tenants"),
    dataTable("Tenants", ["Slug", "Name", "Status", "Created", "Actions"], tenants, (tenant, column) => {
      switch (column) {
        case "Slug": return h("a", { href: `#/tenants/${encodeURIComponent(tenant.slug)}` }, tenant.slug);
        case "Name": return tenant.name;
        case "Status": return h("span", { class: `state-${tenant.status}` }, tenant.status);
        case "Created": return tenant.createdAt;
        default: return tenantActions(tenant, renderTenants);
      }
    }),
    createTenantForm());
}

function tenantActions(tenant, after) {
  const disabled = tenant.status === "disabled";
  const toggle = h("button", {
    type: "button", "aria-label": `${disabled ? "Enable" : "Disable"} ${tenant.slug}`,
    onclick: async () => {
      try {
        await busy(toggle, `${disabled ? "Enabling" : "Disabling"} ${tenant.slug}…`,
          () => admin(`/tenants/${encodeURIComponent(tenant.slug)}`, "PATCH", { status: disabled ? "active" : "disabled" }));
        say(`${tenant.slug} is ${disabled ? "active" : "disabled"}.`);
        await after();
      } catch (error) { showError(error); }
    },
  }, disabled ? "Enable" : "Disable");
  const remove = h("button", {
    type: "button", class: "danger", "aria-label": `Delete ${tenant.slug}`,
    onclick: async () => {
      if (!(await confirmDialog(`Delete the tenant ${tenant.slug} with its keys, sources, policies, users and objects? This cannot be undone.`, `Delete ${tenant.slug} for good`))) return;
      try {
        await busy(remove, `Deleting ${tenant.slug}…`, () => admin(`/tenants/${encodeURIComponent(tenant.slug)}`, "DELETE"));
        state.tenantCache.delete(tenant.slug);
        say(`Deleted ${tenant.slug}.`);
        if (location.hash !== "#/tenants") location.hash = "#/tenants";
        else await renderTenants();
      } catch (error) { showError(error); }
    },
  }, "Delete");
  return [toggle, " ", remove];
}

function createTenantForm() {
  const slug = h("input", { name: "slug", required: true, minlength: 3, maxlength: 40, autocomplete: "off", spellcheck: "false" });
  const name = h("input", { name: "name", autocomplete: "off" });
  const button = h("button", { type: "submit", class: "primary" }, "Create tenant");
  return h("form", {
    "aria-label": "Create a tenant",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        const created = await busy(button, `Creating ${slug.value}…`,
          () => admin("/tenants", "POST", { slug: slug.value.trim(), name: name.value.trim() || slug.value.trim() }));
        state.tenantCache.set(created.slug, created);
        say(`Created ${created.slug}: its keys are on the Keys tab.`);
        location.hash = `#/tenants/${encodeURIComponent(created.slug)}/keys`;
      } catch (error) { showError(error); }
    },
  }, h("fieldset", {}, h("legend", {}, "Create a tenant"), labelled("Slug", slug), labelled("Name", name), button));
}

// ---------------------------------------------------------------------------------------------
// One tenant

const tenantTabs = [
  ["keys", "Keys"], ["sources", "Sources"], ["tables", "Tables"], ["policies", "Policies"], ["users", "Users"],
  ["storage", "Storage"], ["jobs", "Jobs"], ["functions", "Functions"],
];

async function renderTenant(slug, tab) {
  const tenant = await tenantKeys(slug, true);
  const view = main();
  const tabs = h("nav", { class: "tabs", "aria-label": `Sections of ${slug}` }, tenantTabs.map(([id, title]) =>
    [h("a", { href: `#/tenants/${encodeURIComponent(slug)}/${id}`, "aria-current": id === tab ? "page" : null }, title), " "]));
  const content = h("section", { "aria-label": tab });
  put(view, 
    h("h1", {}, `Tenant ${slug}`),
    h("p", {}, `${tenant.name} · `, h("span", { class: `state-${tenant.status}` }, tenant.status), ` · API ${tenant.apiUrl} · `,
      tenantActions(tenant, () => renderTenant(slug, tab))),
    tabs, content);
  const renderers = { keys: renderKeys, sources: renderSources, tables: renderTables, policies: renderPolicies, users: renderUsers,
    storage: renderStorage, jobs: renderJobs, functions: renderFunctions };
  await (renderers[tab] || renderKeys)(slug, content, tenant);
}

async function renderKeys(slug, content, tenant) {
  const secrets = await admin(`/tenants/${encodeURIComponent(slug)}/keys`);
  const copyButton = (label, key) => h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(key);
        say(`Copied the ${label} to the clipboard.`);
      } catch (error) {
        showError(new Error(`the browser refused clipboard access (${error.message})`));
      }
    },
  }, `Copy ${label}`);
  const rotate = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await busy(rotate, "Rotating the signing secret…", () => admin(`/tenants/${encodeURIComponent(slug)}/keys/rotate`, "POST", {}));
        state.tenantCache.delete(slug);
        say("Rotated: new keys are signed with the new secret; the old ones keep working until their secret is revoked.");
        await renderTenant(slug, "keys");
      } catch (error) { showError(error); }
    },
  }, "Rotate signing secret");
  put(content, 
    h("h2", {}, "Keys"),
    dataTable("API keys", ["Key", "Value", "Copy"], [["anon key", tenant.anonKey], ["service key", tenant.serviceKey]], (row, column) => {
      if (column === "Key") return row[0];
      if (column === "Value") return h("code", { class: "masked", title: "masked" }, mask(row[1]));
      return copyButton(row[0], row[1]);
    }),
    h("p", { class: "muted" }, "The service key bypasses row policies: keep it on servers."),
    h("h3", {}, "Signing secrets"),
    dataTable("Signing secrets", ["Key id", "Created", "Revoked", "Active"], secrets, (secret, column) => {
      switch (column) {
        case "Key id": return h("code", {}, secret.kid);
        case "Created": return secret.createdAt;
        case "Revoked": return formatCell(secret.revokedAt);
        default: return secret.active ? "yes" : "no";
      }
    }),
    rotate);
}

async function renderSources(slug, content) {
  const [sources, schema] = await Promise.all([
    admin(`/tenants/${encodeURIComponent(slug)}/sources`),
    admin(`/tenants/${encodeURIComponent(slug)}/schema`).catch((error) => { showError(error); return { sources: [] }; }),
  ]);
  const models = new Map((schema.sources || []).map((source) => [source.name, source.model]));
  const rerender = () => renderSources(slug, content);
  put(content, 
    h("h2", {}, "Sources"),
    dataTable("Sources", ["Name", "Kind", "Entities", "Served", "Actions"], sources, (source, column) => {
      switch (column) {
        case "Name": return source.name;
        case "Kind": return source.kind + (source.hosted ? " (hosted)" : "");
        case "Entities": return formatCell(source.entities);
        case "Served": return source.served === false ? "no" : "yes";
        default: return sourceActions(slug, source, rerender);
      }
    }),
    sources.filter((source) => models.get(source.name)).map((source) => modelDetails(source.name, models.get(source.name))),
    addSourceForm(slug, rerender));
}

function sourceActions(slug, source, after) {
  const path = `/tenants/${encodeURIComponent(slug)}/sources/${encodeURIComponent(source.name)}`;
  const refresh = h("button", {
    type: "button", "aria-label": `Refresh ${source.name}`,
    onclick: async () => {
      try {
        const refreshed = await busy(refresh, `Refreshing ${source.name}: introspecting…`, () => admin(`${path}/refresh`, "POST", {}));
        await after();
        say(`Refreshed ${source.name}: ${refreshed && refreshed.entities !== undefined ? refreshed.entities : "?"} entities.`);
      } catch (error) { showError(error); }
    },
  }, "Refresh");
  const remove = h("button", {
    type: "button", class: "danger", "aria-label": `Remove ${source.name}`,
    onclick: async () => {
      if (!(await confirmDialog(`Remove the source ${source.name} from ${slug}? Its API goes away; hosted tables are dropped.`, `Remove ${source.name}`))) return;
      try {
        await busy(remove, `Removing ${source.name}…`, () => admin(path, "DELETE"));
        await after();
        say(`Removed ${source.name}.`);
      } catch (error) { showError(error); }
    },
  }, "Remove");
  return [refresh, " ", remove];
}

function modelDetails(name, model) {
  const entities = model.entities || [];
  return h("details", {},
    h("summary", {}, `Model of ${name}: ${entities.length} entities, ${(model.relations || []).length} relations`),
    entities.map((entity) => h("div", {},
      h("h4", {}, `${entity.schema ? entity.schema + "." : ""}${entity.name} (${entity.kind})`),
      dataTable(`Columns of ${entity.name}`, ["Column", "Type", "Nullable", "Key"], entity.columns || [], (column, header) => {
        switch (header) {
          case "Column": return column.name;
          case "Type": return column.nativeType || column.type;
          case "Nullable": return column.nullable ? "yes" : "no";
          default: return (entity.primaryKey || []).includes(column.name) ? "primary" : "";
        }
      }))));
}

function addSourceForm(slug, after) {
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const kind = h("select", { name: "kind" }, ["postgres", "sqlite", "mongodb", "rest", "graphql"].map((value) => h("option", { value }, value)));
  const url = h("input", { name: "url", autocomplete: "off", spellcheck: "false", size: 48, placeholder: "postgresql://user:password@host:5432/db" });
  const button = h("button", { type: "submit", class: "primary" }, "Add source");
  return h("form", {
    "aria-label": "Add a source",
    onsubmit: async (event) => {
      event.preventDefault();
      const body = { name: name.value.trim(), kind: kind.value };
      if (url.value.trim()) body.url = url.value.trim();
      try {
        const added = await busy(button, `Adding ${body.name}: connecting and introspecting…`,
          () => admin(`/tenants/${encodeURIComponent(slug)}/sources`, "POST", body));
        await after();
        say(`Added ${body.name}: ${added && added.entities !== undefined ? added.entities : "?"} entities.`);
      } catch (error) { showError(error); }
    },
  }, h("fieldset", {}, h("legend", {}, "Add a source"), labelled("Name", name), labelled("Kind", kind), labelled("URL", url), button));
}

async function renderTables(slug, content) {
  const schema = await admin(`/tenants/${encodeURIComponent(slug)}/schema`);
  const sources = (schema.sources || []).filter((source) => source.model && (source.model.entities || []).length);
  put(content, h("h2", {}, "Tables"));
  if (!sources.length) {
    content.append(h("p", {}, "This tenant has no source with tables yet: add one on the Sources tab."));
    return;
  }
  const sourceSelect = h("select", { name: "source" }, sources.map((source) => h("option", { value: source.name }, source.name)));
  const tableSelect = h("select", { name: "table" });
  const columnSelect = h("select", { name: "column" });
  const operator = h("select", { name: "operator" },
    ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "is"].map((value) => h("option", { value }, value)));
  const value = h("input", { name: "value", autocomplete: "off" });
  const grid = h("div", { "aria-live": "polite" });
  const pageSize = 25;
  let offset = 0;
  let filter = null;

  const entityOf = () => {
    const source = sources.find((candidate) => candidate.name === sourceSelect.value);
    return source.model.entities.find((entity) => entity.name === tableSelect.value);
  };
  const fillTables = () => {
    const source = sources.find((candidate) => candidate.name === sourceSelect.value);
    put(tableSelect, ...source.model.entities.map((entity) => h("option", { value: entity.name }, entity.name)));
    fillColumns();
  };
  const fillColumns = () => {
    const entity = entityOf();
    put(columnSelect, ...((entity && entity.columns) || []).map((column) => h("option", { value: column.name }, column.name)));
  };
  const load = async () => {
    const entity = entityOf();
    if (!entity) return;
    const query = new URLSearchParams({ limit: String(pageSize), offset: String(offset) });
    if ((entity.primaryKey || []).length) query.set("order", entity.primaryKey.map((column) => `${column}.asc`).join(","));
    if (filter) query.append(filter.column, `${filter.operator}.${filter.value}`);
    const path = `/sources/${encodeURIComponent(sourceSelect.value)}/rest/v1/${encodeURIComponent(entity.name)}?${query}`;
    try {
      const response = await tenantCall(slug, path, { headers: { Prefer: "count=exact", Accept: "application/json" } });
      const rows = await readJSON(response);
      const range = response.headers.get("Content-Range") || "";
      const total = Number(range.split("/")[1]);
      const columns = rows.length ? Object.keys(rows[0]) : (entity.columns || []).map((column) => column.name);
      const shown = rows.length ? `Rows ${offset + 1}–${offset + rows.length}` : "No rows";
      const previous = h("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - pageSize); load(); } }, "Previous");
      const next = h("button", {
        type: "button", disabled: Number.isFinite(total) ? offset + rows.length >= total : rows.length < pageSize,
        onclick: () => { offset += pageSize; load(); },
      }, "Next");
      put(grid, 
        dataTable(`Rows of ${entity.name}`, columns, rows, (row, column) => formatCell(row[column])),
        h("p", {}, `${shown}${Number.isFinite(total) ? ` of ${total}` : ""} `, previous, " ", next));
      document.getElementById("errors").textContent = "";
    } catch (error) {
      put(grid);
      showError(error);
    }
  };
  sourceSelect.addEventListener("change", () => { fillTables(); offset = 0; filter = null; load(); });
  tableSelect.addEventListener("change", () => { fillColumns(); offset = 0; filter = null; load(); });
  const filterForm = h("form", {
    "aria-label": "Filter rows",
    onsubmit: (event) => {
      event.preventDefault();
      filter = { column: columnSelect.value, operator: operator.value, value: value.value };
      offset = 0;
      load();
    },
  }, labelled("Column", columnSelect), labelled("Operator", operator), labelled("Value", value),
  h("button", { type: "submit" }, "Apply filter"), " ",
  h("button", { type: "button", onclick: () => { filter = null; value.value = ""; offset = 0; load(); } }, "Clear filter"));
  content.append(h("div", {}, labelled("Source", sourceSelect), labelled("Table", tableSelect)), filterForm, grid);
  fillTables();
  await load();
}

async function renderPolicies(slug, content) {
  const document_ = await admin(`/tenants/${encodeURIComponent(slug)}/policies`);
  const text = h("textarea", { name: "policies", spellcheck: "false", "aria-describedby": "policies-error" });
  text.value = JSON.stringify(document_, null, 2);
  const fieldError = h("p", { class: "field-error", id: "policies-error" });
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const form = h("form", {
    "aria-label": "Policies",
    onsubmit: async (event) => {
      event.preventDefault();
      fieldError.textContent = "";
      text.removeAttribute("aria-invalid");
      let parsed;
      try {
        parsed = JSON.parse(text.value);
      } catch (error) {
        text.setAttribute("aria-invalid", "true");
        showError(new Error(`not valid JSON: ${error.message}`), fieldError);
        return;
      }
      try {
        const saved = await busy(save, "Saving policies…", () => admin(`/tenants/${encodeURIComponent(slug)}/policies`, "PUT", parsed));
        const count = saved && Array.isArray(saved.policies) ? saved.policies.length : (parsed.policies || []).length;
        say(`Saved ${count} policies.`);
      } catch (error) {
        text.setAttribute("aria-invalid", "true");
        showError(error, fieldError);
        document.getElementById("status").textContent = "";
      }
    },
  }, labelled("Policies", text), fieldError, save);
  put(content, 
    h("h2", {}, "Policies"),
    h("p", { class: "muted" }, 'A document {"policies": [...]}: entity, role, action, optional when, columns, check. Saving replaces all of them.'),
    form);
}

async function renderUsers(slug, content) {
  const perPage = 50;
  let page = 1;
  const list = h("div", { "aria-live": "polite" });
  put(content, h("h2", {}, "Users"), list);
  const load = async () => {
    const response = await tenantCall(slug, `/auth/v1/admin/users?page=${page}&per_page=${perPage}`);
    const answer = await readJSON(response);
    const users = Array.isArray(answer) ? answer : (answer && answer.users) || [];
    const total = Number(response.headers.get("X-Total-Count"));
    const previous = h("button", { type: "button", disabled: page === 1, onclick: () => { page -= 1; load().catch(showError); } }, "Previous");
    const next = h("button", {
      type: "button", disabled: Number.isFinite(total) ? page * perPage >= total : users.length < perPage,
      onclick: () => { page += 1; load().catch(showError); },
    }, "Next");
    const first = (page - 1) * perPage;
    put(list,
      dataTable("Users", ["Email", "Phone", "Id", "Created", "Last sign-in", "Confirmed"], users, (user, column) => {
        switch (column) {
          case "Email": return formatCell(user.email || null);
          case "Phone": return formatCell(user.phone || null);
          case "Id": return h("code", {}, user.id);
          case "Created": return formatCell(user.created_at);
          case "Last sign-in": return formatCell(user.last_sign_in_at || null);
          default: return user.email_confirmed_at || user.phone_confirmed_at ? "yes" : "no";
        }
      }),
      h("p", {}, users.length ? `Users ${first + 1}–${first + users.length}` : "No users", Number.isFinite(total) ? ` of ${total} ` : " ",
        previous, " ", next));
  };
  await load();
}

async function renderStorage(slug, content) {
  put(content, h("h2", {}, "Storage"));
  let buckets;
  try {
    buckets = await readJSON(await tenantCall(slug, "/storage/v1/bucket"));
  } catch (error) {
    content.append(h("p", {}, `Object storage is not available here: ${describeError(error)}`));
    return;
  }
  const objects = h("div", { "aria-live": "polite" });
  content.append(dataTable("Buckets", ["Bucket", "Public", "Created"], buckets, (bucket, column) => {
    if (column === "Bucket") {
      return h("button", {
        type: "button", class: "link", "aria-label": `Open bucket ${bucket.name}`,
        onclick: async () => {
          try {
            const response = await tenantCall(slug, `/storage/v1/object/list/${encodeURIComponent(bucket.id || bucket.name)}`, {
              method: "POST", headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ prefix: "", limit: 100, offset: 0, sortBy: { column: "name", order: "asc" } }),
            });
            const list = (await readJSON(response)) || [];
            put(objects, h("h3", {}, `Objects in ${bucket.name}`),
              dataTable(`Objects in ${bucket.name}`, ["Name", "Size", "Type", "Updated"], list, (object, header) => {
                const metadata = object.metadata || {};
                switch (header) {
                  case "Name": return object.id ? object.name : `${object.name}/`;
                  case "Size": return formatCell(metadata.size ?? null);
                  case "Type": return formatCell(metadata.mimetype ?? null);
                  default: return formatCell(object.updated_at ?? null);
                }
              }));
          } catch (error) { showError(error); }
        },
      }, bucket.name);
    }
    if (column === "Public") return bucket.public ? "yes" : "no";
    return formatCell(bucket.created_at ?? null);
  }), objects);
}

async function renderJobs(slug, content) {
  const base = `/tenants/${encodeURIComponent(slug)}`;
  const [webhooks, cron, queues] = await Promise.all([
    admin(`${base}/webhooks`), admin(`${base}/cron`), admin(`${base}/queues`)]);
  const list = (answer, key) => (Array.isArray(answer) ? answer : (answer && answer[key]) || []);
  put(content, 
    h("h2", {}, "Jobs"),
    h("h3", {}, "Webhooks"), genericTable("Webhooks", list(webhooks, "webhooks"), ["id", "name", "source", "table", "events", "url", "enabled"]),
    h("h3", {}, "Scheduled jobs"), genericTable("Scheduled jobs", list(cron, "jobs"), ["name", "schedule", "timezone", "url", "enabled", "nextRunAt"]),
    h("h3", {}, "Queues"), genericTable("Queues", list(queues, "queues"), ["name", "queue_name", "queue_length", "total_messages", "created_at"]));
}

async function renderFunctions(slug, content) {
  const answer = await admin(`/tenants/${encodeURIComponent(slug)}/functions`);
  const functions = Array.isArray(answer) ? answer : (answer && answer.functions) || [];
  put(content, h("h2", {}, "Functions"),
    genericTable("Functions", functions, ["name", "version", "language", "verifyJwt", "timeoutMs", "memoryLimitMb", "updatedAt"]));
}

// ---------------------------------------------------------------------------------------------
// Node: supervisor, cluster, metrics

async function renderSupervisor() {
  const view = main();
  const body = h("div", {});
  put(view, h("h1", {}, "Supervisor"), body);
  const draw = async () => {
    const tree = await admin("/supervisor");
    const node = tree.node || {};
    put(body, 
      h("p", {}, "Node ", h("code", {}, node.id), ` · ${node.mode} mode · up ${Math.round(node.uptimeSeconds || 0)} s`,
        node.draining ? " · draining" : "", ` · ${tree.activeTenants} active tenants`),
      (tree.tenants || []).map((tenant) => {
        const rows = [];
        for (const child of tenant.children || []) rows.push({ subsystem: "tenant", ...child });
        for (const subsystem of tenant.subsystems || []) {
          rows.push({ subsystem: subsystem.name, name: "(subsystem)", state: subsystem.status, restarts: null, lastError: subsystem.degradedReason });
          for (const child of subsystem.children || []) rows.push({ subsystem: subsystem.name, ...child });
        }
        return h("section", { "aria-label": `Tenant ${tenant.slug}` },
          h("h2", {}, `${tenant.slug} `, h("span", { class: `state-${tenant.status}` }, tenant.status)),
          h("p", { class: "muted" }, `owner ${tenant.owner} · in flight ${tenant.inFlight} · queued ${tenant.queued}`,
            tenant.degradedReason ? ` · ${tenant.degradedReason}` : ""),
          dataTable(`Children of ${tenant.slug}`, ["Subsystem", "Child", "State", "Restarts", "Last error"], rows, (row, column) => {
            switch (column) {
              case "Subsystem": return row.subsystem;
              case "Child": return row.name;
              case "State": return h("span", { class: `state-${row.state}` }, row.state);
              case "Restarts": return formatCell(row.restarts);
              default: return formatCell(row.lastError);
            }
          }));
      }),
      (tree.tenants || []).length ? null : h("p", {}, "No tenant is active on this node right now."));
  };
  await draw();
  every(5000, () => draw().catch(showError));
}

async function renderCluster() {
  const view = main();
  const body = h("div", {});
  put(view, h("h1", {}, "Cluster"), body);
  const draw = async () => {
    const cluster = await admin("/cluster");
    const placements = Object.entries(cluster.placements || {}).sort(([a], [b]) => a.localeCompare(b));
    put(body, 
      h("p", {}, "This node: ", h("code", {}, cluster.self), ` · coordination ${cluster.coordination}`,
        cluster.coordinationReachable === false ? " (unreachable)" : ""),
      h("h2", {}, "Members"),
      dataTable("Members", ["Node", "Address", "Started", "Last heartbeat", "Load"], cluster.members || [], (member, column) => {
        switch (column) {
          case "Node": return member.id === cluster.self ? `${member.id} (this node)` : member.id;
          case "Address": return member.address;
          case "Started": return member.startedAt;
          case "Last heartbeat": return member.lastHeartbeat;
          default: return formatCell(member.load);
        }
      }),
      h("h2", {}, "Placements"),
      dataTable("Placements", ["Tenant", "Owner", "Fencing token"], placements, ([slug, owner], column) => {
        if (column === "Tenant") return slug;
        if (column === "Owner") return typeof owner === "object" ? JSON.stringify(owner) : owner;
        return formatCell((cluster.fencingTokens || {})[slug] ?? null);
      }));
  };
  await draw();
  every(5000, () => draw().catch(showError));
}

/// Prometheus' text format, just enough for our own counters and histograms.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let label;
    while ((label = labelPattern.exec(match[3] || "")) !== null) labels[label[1]] = label[2].replace(/\\(.)/g, "$1");
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

function summariseByTenant(samples) {
  const tenants = new Map();
  const entry = (tenant) => {
    if (!tenants.has(tenant)) tenants.set(tenant, { requests: 0, errors: 0, sum: 0, count: 0, buckets: new Map() });
    return tenants.get(tenant);
  };
  for (const sample of samples) {
    const tenant = sample.labels.tenant;
    if (tenant === undefined) continue;
    if (sample.name === "minibaas_http_requests_total") {
      entry(tenant).requests += sample.value;
      if (String(sample.labels.status || "").startsWith("5")) entry(tenant).errors += sample.value;
    } else if (sample.name === "minibaas_http_request_duration_seconds_sum") entry(tenant).sum += sample.value;
    else if (sample.name === "minibaas_http_request_duration_seconds_count") entry(tenant).count += sample.value;
    else if (sample.name === "minibaas_http_request_duration_seconds_bucket") {
      const buckets = entry(tenant).buckets;
      buckets.set(sample.labels.le, (buckets.get(sample.labels.le) || 0) + sample.value);
    }
  }
  return tenants;
}

function quantile(buckets, q) {
  const bounds = [...buckets.entries()].map(([le, count]) => [le === "+Inf" ? Infinity : Number(le), count]).sort((a, b) => a[0] - b[0]);
  const total = bounds.length ? bounds[bounds.length - 1][1] : 0;
  if (!total) return null;
  for (const [bound, count] of bounds) if (count >= q * total) return bound;
  return null;
}

async function renderMetrics() {
  const view = main();
  const body = h("div", {});
  put(view, h("h1", {}, "Metrics"),
    h("p", { class: "muted" }, "Requests per tenant from /metrics, refreshed every 2 seconds. Rate is over the last refresh; latency quantiles are bucket bounds."),
    body);
  let previous = null;
  const draw = async () => {
    const response = await send("/metrics", { headers: { Accept: "text/plain" } });
    const tenants = summariseByTenant(parseMetrics(await response.text()));
    const now = performance.now();
    const rows = [...tenants.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([tenant, figures]) => {
      let rate = null;
      if (previous && previous.tenants.has(tenant)) {
        rate = (figures.requests - previous.tenants.get(tenant).requests) / ((now - previous.at) / 1000);
      }
      const p95 = quantile(figures.buckets, 0.95);
      return {
        tenant: tenant || "(node)", requests: figures.requests, rate, errors: figures.errors,
        mean: figures.count ? (figures.sum / figures.count) * 1000 : null,
        p95: p95 === null ? null : p95 === Infinity ? "> 10 s" : p95 * 1000,
      };
    });
    previous = { at: now, tenants };
    put(body, 
      dataTable("Requests by tenant", ["Tenant", "Requests", "Rate (req/s)", "5xx", "Mean latency (ms)", "p95 latency (ms)"], rows, (row, column) => {
        switch (column) {
          case "Tenant": return row.tenant;
          case "Requests": return String(row.requests);
          case "Rate (req/s)": return row.rate === null ? "—" : row.rate.toFixed(1);
          case "5xx": return String(row.errors);
          case "Mean latency (ms)": return row.mean === null ? "—" : row.mean.toFixed(2);
          default: return row.p95 === null ? "—" : typeof row.p95 === "string" ? row.p95 : `≤ ${row.p95.toFixed(1)}`;
        }
      }),
      h("p", { class: "muted" }, `Updated ${new Date().toLocaleTimeString()}`));
  };
  await draw();
  every(2000, () => draw().catch(showError));
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out.", false));
  window.addEventListener("hashchange", () => { clearMessages(); route(); });
  route();
});
