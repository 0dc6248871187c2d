// Snowfall browser proxy: the page's glue. It keeps the on/off switch,
// loads the Go WebAssembly proxy only once switched on, and renders the
// state the proxy reports (see State in proxy-wasm/controller.go).
'use strict';

(function () {
  const mode = document.body.dataset.mode || 'page';
  const KEY_ENABLED = 'snowfall.enabled';

  // Settings a page may take from its query string, when config.json
  // allows it: name → type.
  const QUERY_KEYS = {
    broker: 'string', relay: 'string', relayPattern: 'string', natProbe: 'string',
    stun: 'list', proxyType: 'string', forceNAT: 'string', capacity: 'number',
    pollInterval: 'string', fastPollInterval: 'string', slowestPollInterval: 'string',
    natRetestInterval: 'string', dataChannelTimeout: 'string', inactivityTimeout: 'string',
    bandwidthLimit: 'number', allowNonTLSRelay: 'bool', allowPrivateRelay: 'bool',
    keepLocalAddresses: 'bool', unsafeLogging: 'bool', debug: 'bool',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    toggle: $('toggle'), status: $('status'), error: $('error'), errorText: $('error-text'),
    retry: $('retry'), clients: $('clients'), helped24h: $('helped24h'), bytes: $('bytes'),
    bytesDetail: $('bytes-detail'), nat: $('nat'), natDetail: $('nat-detail'), version: $('version'),
  };

  // localStorage may be missing or refuse access (private windows, blocked
  // third-party storage for an embedded badge): then the switch lasts for
  // the visit only.
  const storage = {
    get(k) { try { return window.localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { window.localStorage.setItem(k, v); } catch (e) { /* visit only */ } },
  };

  let config = null;
  let loading = null; // promise of the API once the wasm is loaded
  let api = null;
  let enabled = false;
  let last = null; // last state from the proxy
  let countdown = null;

  function formatBytes(n) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[i];
  }

  function people(n) { return n === 1 ? '1 person' : n + ' people'; }

  function inWords(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min';
    return Math.round(m / 60) + ' h';
  }

  function setSwitch(on) {
    ui.toggle.setAttribute('aria-checked', on ? 'true' : 'false');
  }

  function setStatus(text, active) {
    ui.status.textContent = text;
    ui.status.classList.toggle('active', !!active);
  }

  function showError(text, retryable, retryAt) {
    if (countdown) { clearInterval(countdown); countdown = null; }
    if (!text) { ui.error.hidden = true; ui.retry.hidden = true; return; }
    const paint = () => {
      let t = text;
      if (retryAt) {
        const left = retryAt - Date.now();
        t += left >= 1000 ? ' Trying again in ' + inWords(left) + '.' : ' Trying again…';
      }
      ui.errorText.textContent = t;
    };
    paint();
    if (retryAt) countdown = setInterval(paint, 1000);
    ui.error.hidden = false;
    ui.retry.hidden = !retryable;
  }

  const NAT_TEXT = {
    unknown: ['Unknown', 'Not measured yet; you can still help.'],
    restricted: ['Restricted', 'You can help people whose networks are open.'],
    unrestricted: ['Unrestricted', 'You can help almost anyone.'],
  };

  function render(s) {
    last = s;
    if (ui.clients) {
      ui.clients.textContent = String(s.clients);
      ui.helped24h.textContent = String(s.helped24h);
      const session = s.bytesToClients + s.bytesFromClients;
      ui.bytes.textContent = formatBytes(session);
      ui.bytesDetail.textContent = '↓ ' + formatBytes(s.bytesFromClients) + ' from people · ↑ ' +
        formatBytes(s.bytesToClients) + ' to people · ' + formatBytes(s.bytesTotal) + ' since you first switched on';
      const nat = NAT_TEXT[s.nat] || NAT_TEXT.unknown;
      if (s.phase === 'starting' && s.nat === 'unknown') {
        ui.nat.textContent = 'Checking…';
        ui.natDetail.textContent = 'Testing how your network accepts connections.';
      } else {
        ui.nat.textContent = nat[0];
        ui.natDetail.textContent = s.natLearned ? 'Learned from connections that failed. ' + nat[1] : nat[1];
      }
    }
    if (!enabled) {
      setStatus(mode === 'badge' ? 'Off. Switch on to help people reach Tor.' : 'Off.', false);
    } else {
      switch (s.phase) {
        case 'starting':
          setStatus('Starting: checking your network…', false); break;
        case 'waiting':
          setStatus(mode === 'badge'
            ? 'On. Helped ' + people(s.helped24h) + ' today.'
            : 'On. Waiting for someone to help.', true);
          break;
        case 'serving':
          setStatus('Helping ' + people(s.clients) + ' right now.', true); break;
        case 'error':
          setStatus('On, but not working.', false); break;
        default:
          setStatus('Stopping…', false);
      }
    }
    const e = s.error;
    if (e) {
      const retryable = e.kind === 'broker' || e.kind === 'relay' || e.kind === 'pattern';
      let text = e.message;
      if (e.kind === 'broker') text = "Can't reach the Snowflake broker, which introduces people to you. Check your connection.";
      if (e.kind === 'relay') text = "Can't reach the Tor bridge. Your network may block it.";
      if (e.kind === 'webrtc') text = webrtcMessage;
      if (e.kind === 'config') text = 'This page is misconfigured: ' + e.message;
      if (e.kind === 'load') text = 'The proxy could not be loaded (' + e.message + '). Reload the page to try again.';
      if (mode === 'badge' && e.kind !== 'config' && e.kind !== 'load') text = text.split('. ')[0] + '.';
      showError(text, retryable, enabled && e.retryAt ? e.retryAt : 0);
      if (e.message && e.kind !== 'config') console.warn('snowfall:', e.message);
    } else {
      showError('');
    }
  }

  const webrtcMessage = "Your browser doesn't support WebRTC, which Snowflake needs. " +
    'It may be turned off in its settings or by an extension; another browser will work.';

  const offState = { clients: 0, helped24h: 0, bytesToClients: 0, bytesFromClients: 0, bytesTotal: 0, nat: 'unknown', phase: 'off' };

  function fail(kind, message) {
    render(Object.assign({}, last || offState, { phase: 'error', error: { kind: kind, message: message } }));
  }

  async function loadConfig() {
    let cfg = {};
    try {
      const r = await fetch('config.json', { cache: 'no-store' });
      if (r.ok) cfg = await r.json();
    } catch (e) {
      console.warn('snowfall: no config.json, using defaults', e);
    }
    if (cfg.allowQueryOverrides) {
      const q = new URLSearchParams(location.search);
      for (const [k, type] of Object.entries(QUERY_KEYS)) {
        if (!q.has(k)) continue;
        const v = q.get(k);
        if (type === 'bool') cfg[k] = v === '' || v === '1' || v === 'true';
        else if (type === 'number') cfg[k] = Number(v);
        else if (type === 'list') cfg[k] = v.split(',').map((x) => x.trim()).filter(Boolean);
        else cfg[k] = v;
      }
    }
    delete cfg.allowQueryOverrides;
    return cfg;
  }

  function loadWasm() {
    if (loading) return loading;
    loading = new Promise((resolve, reject) => {
      if (typeof Go === 'undefined') { reject(new Error('wasm_exec.js did not load')); return; }
      const go = new Go();
      window.snowfallReady = () => resolve(window.snowfall);
      const source = fetch('snowfall.wasm');
      const start = WebAssembly.instantiateStreaming
        ? WebAssembly.instantiateStreaming(source, go.importObject).catch(async () =>
          // A server without the application/wasm type: compile from bytes.
          WebAssembly.instantiate(await (await fetch('snowfall.wasm')).arrayBuffer(), go.importObject))
        : source.then((r) => r.arrayBuffer()).then((b) => WebAssembly.instantiate(b, go.importObject));
      start.then((res) => {
        go.run(res.instance).then(() => console.warn('snowfall: the proxy exited'));
      }, reject);
    });
    loading.catch(() => { loading = null; });
    return loading;
  }

  async function turnOn() {
    enabled = true;
    storage.set(KEY_ENABLED, '1');
    setSwitch(true);
    setStatus('Loading…', false);
    showError('');
    try {
      api = await loadWasm();
    } catch (e) {
      fail('load', e.message);
      return;
    }
    if (!enabled) return;
    if (ui.version) ui.version.textContent = 'Version ' + api.version + '.';
    api.onUpdate((json) => render(JSON.parse(json)));
    const err = api.start(JSON.stringify(config));
    if (err) console.warn('snowfall: start:', err);
  }

  function turnOff() {
    enabled = false;
    storage.set(KEY_ENABLED, '0');
    setSwitch(false);
    if (api) api.stop();
    render(Object.assign({}, last || offState, { phase: 'off', error: null }));
  }

  async function init() {
    if (typeof RTCPeerConnection === 'undefined') {
      setSwitch(false);
      ui.toggle.disabled = true;
      fail('webrtc', '');
      return;
    }
    if (typeof WebAssembly !== 'object') {
      ui.toggle.disabled = true;
      fail('config', "this browser can't run WebAssembly.");
      return;
    }
    config = await loadConfig();
    if (!config.proxyType) config.proxyType = 'badge';
    ui.toggle.disabled = false;
    ui.toggle.addEventListener('click', () => (enabled ? turnOff() : turnOn()));
    ui.retry.addEventListener('click', () => {
      if (api) api.retry();
    });
    // Opt-in, like Tor's badge: off until the volunteer switches it on,
    // then on at every visit until switched off.
    if (storage.get(KEY_ENABLED) === '1') turnOn();
    else render(offState);
  }

  init();
})();
