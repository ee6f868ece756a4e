// Consult room: signalling over the service's WebSocket, media peer to peer (or via TURN).
// The join token arrives in the URL fragment (#token=...) and goes to the service in the
// socket's first message: never in a request line, which servers and proxies log.
"use strict";
(() => {
  const T = {
    vi: { title: "Phòng hội chẩn", precall: "Kiểm tra trước cuộc gọi", join: "Vào phòng",
      mute: "Tắt tiếng", camera: "Tắt camera", audioonly: "Chỉ âm thanh", leave: "Rời phòng",
      consent: "Tôi đồng ý ghi hình buổi hội chẩn", you: "Bạn", other: "English",
      joined: "Đã vào phòng", left: "Đã rời phòng", reconnecting: "Mất kết nối, đang kết nối lại…",
      replaced: "Bạn đã mở phòng ở một cửa sổ khác.", notoken: "Thiếu mã vào phòng.",
      nomedia: "Không dùng được camera/micro; chỉ nghe.",
      nocamera: "Không dùng được camera; cuộc gọi chỉ có âm thanh.",
      weaknet: "Mạng yếu: cuộc gọi chỉ có âm thanh. Bấm “Chỉ âm thanh” để bật lại video.",
      report: (r) => `Độ trễ ${r.rtt_ms ?? "?"} ms, mất gói ${r.loss_pct}%, băng thông ${r.bitrate_kbps} kbps: ` +
        (r.recommended_mode === "video" ? "đủ cho video." : "nên dùng chỉ âm thanh."),
      quality: { good: "Mạng tốt", fair: "Mạng trung bình", poor: "Mạng yếu", unknown: "Chưa rõ" } },
    en: { title: "Consult room", precall: "Pre-call check", join: "Join", mute: "Mute",
      camera: "Camera off", audioonly: "Audio only", leave: "Leave",
      consent: "I consent to recording this consult", you: "You", other: "Tiếng Việt",
      joined: "You are in the room", left: "You left the room", reconnecting: "Connection lost, reconnecting…",
      replaced: "You opened this room in another window.", notoken: "The join token is missing.",
      nomedia: "Camera/microphone unavailable; listening only.",
      nocamera: "Camera unavailable; the call is audio only.",
      weaknet: "Weak network: the call is audio only. Press “Audio only” to turn video back on.",
      report: (r) => `Round trip ${r.rtt_ms ?? "?"} ms, loss ${r.loss_pct}%, bitrate ${r.bitrate_kbps} kbps: ` +
        (r.recommended_mode === "video" ? "good enough for video." : "audio only is advised."),
      quality: { good: "Good network", fair: "Fair network", poor: "Weak network", unknown: "Unknown" } },
  };
  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") === "en" ? "en" : "vi";
  const t = (key) => T[lang][key];
  const $ = (id) => document.getElementById(id);
  const roomId = location.pathname.split("/").pop();
  let token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const relayOnly = params.get("relay") === "1";
  const ICE_PATIENCE_MS = 10000; // then send and receive through the service's relay
  const state = { ws: null, me: null, ice: [], peers: new Map(), local: null, leaving: false,
    relay: null, frames: {}, joined: false, quality: "unknown", mode: "video", notice: null };
  window.telehealthRoom = state; // read by the browser test

  function translate() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    $("lang").textContent = t("other");
    showQuality(state.quality);
    if (state.notice) $("status").textContent = t(state.notice);
  }
  $("lang").onclick = (e) => { e.preventDefault(); lang = lang === "vi" ? "en" : "vi"; translate(); };
  const say = (text) => { state.notice = null; $("status").textContent = text; };
  const notice = (key) => { say(t(key)); state.notice = key; }; // kept across a language switch

  // Camera and microphone; without a camera (missing, busy or refused) the call goes on with
  // the microphone alone, and without both the participant can still listen and watch.
  async function localMedia() {
    if (state.local) return state.local;
    try {
      state.local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    } catch (err) {
      try {
        state.local = await navigator.mediaDevices.getUserMedia({ audio: true });
        notice("nocamera");
      } catch (err2) {
        state.local = new MediaStream();
        notice("nomedia");
      }
      state.mode = "audio_only";
      $("audioonly").setAttribute("aria-pressed", "true");
    }
    $("local").srcObject = state.local;
    return state.local;
  }
  const hasCamera = () => state.local && state.local.getVideoTracks().length > 0;

  // Send what we have; always ask for the others' audio and video, even with nothing to send.
  function addLocalTracks(pc) {
    for (const track of state.local.getTracks()) pc.addTrack(track, state.local);
    for (const kind of ["audio", "video"]) {
      if (!state.local.getTracks().some((tr) => tr.kind === kind)) pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  function send(msg) { if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify(msg)); }

  // A signalling socket whose first message says who we are (precallOnly: the check alone).
  function openSocket(precallOnly) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/rooms/${roomId}`);
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token, precall: precallOnly })));
    return ws;
  }

  function connect() {
    return new Promise((resolve, reject) => {
      const ws = openSocket(false);
      state.ws = ws;
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === "welcome") resolve(msg);
        handle(msg);
      };
      ws.onclose = (ev) => {
        reject(new Error(ev.reason));
        if (state.leaving || ev.code === 4000 || (ev.code >= 4400 && ev.code < 4500)) {
          if (ev.code === 4000) say(t("replaced"));
          return;
        }
        if (state.joined) { say(t("reconnecting")); setTimeout(rejoin, 1000); }
      };
    });
  }

  async function waitGathered(pc) {
    if (pc.iceGatheringState === "complete") return;
    await new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
      setTimeout(resolve, 3000);
    });
  }

  function newPeer(other) {
    const old = state.peers.get(other);
    if (old) old.close();
    const pc = new RTCPeerConnection({ iceServers: state.ice, iceTransportPolicy: relayOnly ? "relay" : "all" });
    state.peers.set(other, pc);
    addLocalTracks(pc);
    pc.ontrack = (ev) => remoteVideo(other).srcObject = ev.streams[0] || new MediaStream([ev.track]);
    pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === "failed") relayFallback(); };
    // No path at all (e.g. relay-only ICE and no TURN reachable) may never report "failed".
    setTimeout(() => {
      const connected = ["connected", "completed"].includes(pc.iceConnectionState);
      if (!connected && state.peers.get(other) === pc && !state.leaving) relayFallback();
    }, ICE_PATIENCE_MS);
    return pc;
  }

  // When no direct or TURN path works, send and receive through the service's own peer.
  async function relayFallback() {
    if (state.relay) return;
    const pc = new RTCPeerConnection({ iceServers: state.ice.filter((s) => !s.username) });
    state.relay = pc;
    addLocalTracks(pc);
    pc.ontrack = (ev) => remoteVideo("relay").srcObject = ev.streams[0] || new MediaStream([ev.track]);
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathered(pc);
    send({ type: "relay_offer", sdp: pc.localDescription.sdp });
  }

  // Audio only stops the video encoder (a disabled track alone still sends black frames).
  function applyMode(pc) {
    const on = state.mode === "audio_only";
    for (const sender of pc.getSenders()) {
      if (!sender.track || sender.track.kind !== "video") continue;
      sender.track.enabled = !on;
      const params = sender.getParameters();
      if (!params.encodings || !params.encodings.length) continue;
      params.encodings.forEach((e) => { e.active = !on; });
      sender.setParameters(params).catch(() => {});
    }
  }

  function remoteVideo(other) {
    let video = document.getElementById(`v-${other}`);
    if (!video) {
      const figure = document.createElement("figure");
      video = document.createElement("video");
      Object.assign(video, { id: `v-${other}`, autoplay: true, playsInline: true });
      figure.append(video);
      $("videos").append(figure);
      const count = () => {
        state.frames[other] = (state.frames[other] || 0) + 1;
        video.requestVideoFrameCallback(count);
      };
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(count);
    }
    return video;
  }

  async function offerTo(other) {
    const pc = newPeer(other);
    await pc.setLocalDescription(await pc.createOffer());
    applyMode(pc);
    await waitGathered(pc); // aiortc peers take no trickled candidates: send them in the SDP
    send({ type: "offer", to: other, sdp: pc.localDescription.sdp });
  }

  async function handle(msg) {
    const from = msg.from;
    if (msg.type === "welcome") {
      state.me = msg.you; state.ice = msg.ice_servers; token = msg.token;
    } else if (msg.type === "token") {
      token = msg.token;
    } else if (msg.type === "offer") {
      const pc = newPeer(from);
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      applyMode(pc);
      await waitGathered(pc);
      send({ type: "answer", to: from, sdp: pc.localDescription.sdp });
    } else if (msg.type === "answer" && state.peers.has(from)) {
      await state.peers.get(from).setRemoteDescription({ type: "answer", sdp: msg.sdp });
    } else if (msg.type === "relay_answer" && state.relay) {
      await state.relay.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    } else if (msg.type === "candidate" && state.peers.has(from)) {
      await state.peers.get(from).addIceCandidate(msg);
    } else if (msg.type === "peer_left" && state.peers.has(from)) {
      state.peers.get(from).close(); state.peers.delete(from);
      const video = document.getElementById(`v-${from}`);
      if (video) video.parentElement.remove();
    } else if (msg.type === "room_closed") { // the consult is over: no reconnecting
      state.joined = false;
      say(msg.message);
    } else if (msg.type === "error") {
      say(msg.message);
      if (msg.reason === "relay_unavailable" && state.relay) { // its server is moving: retry
        state.relay.close(); state.relay = null;
        setTimeout(() => { if (state.joined) relayFallback(); }, 3000);
      }
    }
  }

  async function ensureConnected() {
    if (state.ws && state.ws.readyState === 1) return;
    await localMedia();
    const welcome = await connect();
    return welcome;
  }

  async function join() {
    state.leaving = false;
    const welcome = await ensureConnected();
    state.joined = true;
    if (!state.notice) say(t("joined"));
    ["mute", "camera", "audioonly", "leave"].forEach((id) => { $(id).disabled = false; });
    if (!hasCamera()) { $("camera").disabled = true; $("audioonly").disabled = true; }
    $("join").disabled = true;
    if (state.mode === "audio_only") send({ type: "media_mode", mode: "audio_only" });
    for (const p of (welcome || {}).participants || []) {
      if (p.connected && p.id !== state.me) await offerTo(p.id);
    }
  }

  async function rejoin() {
    if (state.leaving) return;
    try {
      const welcome = await connect();
      for (const p of welcome.participants) if (p.connected && p.id !== state.me) await offerTo(p.id);
      if (state.mode === "audio_only") send({ type: "media_mode", mode: "audio_only" });
      if (!state.notice) say(t("joined"));
    } catch (err) { setTimeout(rejoin, 2000); }
  }

  // The pre-call check uses its own connection, which does not join the room.
  async function precall() {
    await localMedia();
    const ws = openSocket(true);
    const pc = new RTCPeerConnection();
    ws.onmessage = async (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "welcome") {
        pc.setConfiguration({ iceServers: msg.ice_servers.filter((s) => !s.username) });
        addLocalTracks(pc);
        pc.ontrack = (e) => remoteVideo("precall").srcObject = e.streams[0] || new MediaStream([e.track]);
        await pc.setLocalDescription(await pc.createOffer());
        await waitGathered(pc);
        ws.send(JSON.stringify({ type: "precall_offer", sdp: pc.localDescription.sdp }));
      } else if (msg.type === "precall_answer") {
        await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        setTimeout(() => ws.send(JSON.stringify({ type: "precall_report" })), 5000);
      } else if (msg.type === "precall_report") {
        state.report = msg; $("report").textContent = t("report")(msg);
        if (msg.recommended_mode === "audio_only" && hasCamera() && !state.joined) {
          // Too little bandwidth for video: start audio only (the camera stays, switched off).
          state.mode = "audio_only";
          $("audioonly").setAttribute("aria-pressed", "true");
          notice("weaknet");
        }
        ws.send(JSON.stringify({ type: "leave" }));
        pc.close();
        const video = document.getElementById("v-precall");
        if (video) video.parentElement.remove();
      } else if (msg.type === "error") {
        say(msg.message);
      }
    };
  }

  function toggle(button, apply) {
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(on));
    apply(on);
  }
  const tracks = (kind) => (state.local ? state.local.getTracks().filter((tr) => tr.kind === kind) : []);
  const sendMute = () => send({ type: "mute", audio: $("mute").getAttribute("aria-pressed") === "true",
    video: $("camera").getAttribute("aria-pressed") === "true" });
  $("mute").onclick = () => toggle($("mute"), (on) => { tracks("audio").forEach((tr) => { tr.enabled = !on; }); sendMute(); });
  $("camera").onclick = () => toggle($("camera"), (on) => { tracks("video").forEach((tr) => { tr.enabled = !on; }); sendMute(); });
  $("audioonly").onclick = () => toggle($("audioonly"), (on) => {
    state.mode = on ? "audio_only" : "video";
    for (const pc of state.peers.values()) applyMode(pc);
    send({ type: "media_mode", mode: state.mode });
  });
  $("leave").onclick = () => {
    state.leaving = true; state.joined = false;
    send({ type: "leave" });
    for (const pc of state.peers.values()) pc.close();
    state.peers.clear();
    if (state.ws) state.ws.close();
    say(t("left"));
    $("join").disabled = false;
  };
  $("consent").onchange = () => send({ type: "consent", record: $("consent").checked });
  $("join").onclick = () => join().catch((err) => say(err.message));
  $("precall").onclick = () => precall().catch((err) => say(err.message));

  function showQuality(level) {
    state.quality = level;
    $("quality").dataset.level = level;
    $("quality").title = T[lang].quality[level];
    $("quality").textContent = `● ${T[lang].quality[level]}`;
  }

  let lastQualitySent = 0;
  setInterval(async () => {
    const pc = state.peers.values().next().value;
    if (pc) {
      let rtt = null, lost = 0, received = 0, bitrate = null;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "candidate-pair" && r.state === "succeeded" && r.nominated) {
          rtt = r.currentRoundTripTime; bitrate = r.availableOutgoingBitrate ?? bitrate;
        }
        if (r.type === "inbound-rtp") { lost += r.packetsLost || 0; received += r.packetsReceived || 0; }
      });
      const loss = received + lost ? (100 * lost) / (received + lost) : 0;
      const level = rtt === null ? "unknown" : rtt < 0.3 && loss < 3 ? "good" : rtt < 0.8 && loss < 10 ? "fair" : "poor";
      showQuality(level);
      if (rtt !== null && Date.now() - lastQualitySent > 15000) {
        lastQualitySent = Date.now();
        send({ type: "quality", rtt_ms: rtt * 1000, loss_pct: loss, bitrate_kbps: (bitrate || 0) / 1000 });
      }
    }
  }, 2000);
  // Keep a fresh join token for reconnecting after a dropped link.
  setInterval(() => { if (state.joined) send({ type: "refresh" }); }, 120000);

  translate();
  if (!token) say(t("notoken"));
})();
