/**
 * UI strings and language choice.
 *
 * How this works: every user-visible string lives in `DICTIONARIES`, keyed by a dotted name. Static markup
 * carries `data-i18n="key"` (sets textContent) or `data-i18n-attr="attr:key;attr2:key2"` (sets attributes)
 * and is filled by `applyTranslations()`; scripts call `t(key, params)` and re-render on
 * `onLanguageChange()`.
 *
 * Choice of language, first match wins: `?lang=` in the URL (remembered in localStorage), the remembered
 * choice, then zh-CN. A language with an empty dictionary is not offered; a key missing in the chosen
 * language falls back to zh-CN, then to the key itself (so a gap is visible, never blank).
 */

export const DEFAULT_LANG = "zh-CN";
const STORAGE_KEY = "tingshen.lang";

const DICTIONARIES = {
  "zh-CN": {
    "lang.name": "中文",
    "lang.label": "语言",
    "app.name": "Tingshen 庭审",
    "app.tagline": "人民法院远程视频庭审系统",

    // Landing page
    "landing.title": "Tingshen 庭审",
    "landing.intro": "请输入法院提供的入庭码加入庭审。如您收到的是入庭链接，请直接打开该链接。",
    "landing.code.label": "入庭码",
    "landing.submit": "加入",
    "landing.working": "正在验证…",
    "landing.error.empty": "请输入入庭码。",
    "landing.error.invalid": "入庭码无效或已过期，请核对后重试。",
    "landing.error.rateLimited": "尝试次数过多，请稍后再试。",
    "landing.error.network": "无法连接服务器，请检查网络后重试。",
    "landing.error.server": "服务器暂时无法处理请求（{status}），请稍后再试。",

    // Hearing page: header and case information
    "hearing.title": "庭审 — Tingshen",
    "hearing.titleWithCase": "{caseNumber} — 庭审 — Tingshen",
    "hearing.caseNumber": "案号",
    "hearing.court": "法院",
    "hearing.caseUnknown": "加入后显示案号与法院",
    "hearing.you": "您的身份：{name}（{role}）",

    // Pre-join
    "prejoin.heading": "设备检查",
    "prejoin.intro": "请确认摄像头画面和麦克风，然后加入庭审。",
    "prejoin.camera": "摄像头",
    "prejoin.microphone": "麦克风",
    "prejoin.noCamera": "不使用摄像头",
    "prejoin.noMicrophone": "不使用麦克风",
    "prejoin.deviceUnnamed": "设备 {n}",
    "prejoin.previewOff": "摄像头未开启",
    "prejoin.join": "加入庭审",
    "prejoin.noToken": "链接中缺少入庭凭证，请使用法院提供的完整链接或入庭码。",
    "prejoin.toLanding": "输入入庭码",

    // Local media problems (each says the hearing can still be joined)
    "media.insecure": "本页面未通过安全连接（HTTPS）访问，浏览器不允许使用摄像头和麦克风。您仍可加入庭审观看和收听。",
    "media.unsupported": "此浏览器不支持摄像头和麦克风。您仍可加入庭审观看和收听。",
    "media.video.denied": "摄像头权限被拒绝。您仍可加入，但其他人将看不到您的画面。",
    "media.video.notFound": "未检测到摄像头。您仍可加入，但其他人将看不到您的画面。",
    "media.video.inUse": "摄像头正被其他程序占用。您仍可加入，但其他人将看不到您的画面。",
    "media.video.failed": "无法打开摄像头。您仍可加入，但其他人将看不到您的画面。",
    "media.audio.denied": "麦克风权限被拒绝。您仍可加入，但其他人将听不到您的声音。",
    "media.audio.notFound": "未检测到麦克风。您仍可加入，但其他人将听不到您的声音。",
    "media.audio.inUse": "麦克风正被其他程序占用。您仍可加入，但其他人将听不到您的声音。",
    "media.audio.failed": "无法打开麦克风。您仍可加入，但其他人将听不到您的声音。",
    "media.audioBlocked": "浏览器阻止了声音自动播放，请点击页面任意位置以开启声音。",

    // In the hearing
    "room.grid": "参加人画面",
    "room.waiting": "正在等待其他参加人加入…",
    "room.selfView": "本人画面",
    "room.observers": "旁听 {n} 人",
    "room.controls": "庭审控制",
    "control.mute": "静音",
    "control.cameraOff": "关闭摄像头",
    "control.leave": "离开庭审",
    "control.noMicrophone": "无麦克风",
    "control.noCamera": "无摄像头",

    // Hearing page: the lobby (waiting to be admitted)
    "lobby.heading": "请稍候，审判长将准许您进入",
    "lobby.body": "您正在候审。审判长准许后将自动进入庭审，请不要关闭本页面。",
    "lobby.leave": "离开",

    // Hearing page: the court's side panel (judge and clerk)
    "staff.panel": "庭审管理",
    "lobbyPanel.heading": "等候进入",
    "lobbyPanel.empty": "暂无等候人员",
    "lobbyPanel.readOnly": "由审判长准许或拒绝进入。",
    "lobbyPanel.admit": "准许进入",
    "lobbyPanel.admitLabel": "准许{name}进入",
    "lobbyPanel.refuse": "拒绝",
    "lobbyPanel.refuseLabel": "拒绝{name}进入",
    "notes.heading": "庭审记录",
    "notes.label": "记录内容",
    "notes.placeholder": "例如：宣誓；出示证据3",
    "notes.hint": "Ctrl+Enter 添加",
    "notes.submit": "添加记录",
    "notes.empty": "暂无记录",

    // Hearing page: the presiding judge's controls
    "judge.controls": "审判长控制",
    "judge.pauseReason": "暂停录制的理由",
    "judge.pause": "暂停录制",
    "judge.resume": "恢复录制",
    "judge.end": "结束庭审",
    "judge.endConfirm": "再次点击以结束庭审",
    "judge.floor": "发言管理",
    "judge.giveFloor": "请{name}发言",
    "judge.giveFloorLabel": "把发言权交给{name}",
    "judge.takeFloor": "收回发言权",
    "tile.muteParticipant": "静音",
    "tile.unmuteParticipant": "取消静音",
    "tile.muteParticipantLabel": "将{name}静音",
    "tile.unmuteParticipantLabel": "取消{name}的静音",
    "tile.hasFloor": "发言中",
    "tile.silenced": "已被审判长静音",
    "tile.requestingFloor": "申请发言",
    "tile.spotlight": "设为焦点",
    "tile.unspotlight": "取消焦点",
    "tile.spotlightLabel": "将{name}设为所有人的焦点画面",
    "tile.unspotlightLabel": "取消{name}的焦点画面",
    "tile.spotlighted": "焦点画面",
    "quality.good": "连接良好",
    "quality.poor": "连接较差",
    "quality.bad": "连接很差",
    "quality.title": "{level}：往返 {rttMs} 毫秒，丢包 收 {lossInPct}% / 发 {lossOutPct}%，码率 收 {kbpsIn} / 发 {kbpsOut} kbps",
    "control.requestFloor": "申请发言",
    "control.floorRequested": "已申请发言",
    "control.hasFloor": "您正在发言",
    "control.silenced": "您已被审判长静音",
    "control.spotlighted": "您是焦点画面：所有人看到您的大画面",
    "control.share": "共享屏幕",
    "control.stopShare": "停止共享",
    "control.consult": "私下会见",
    "room.videoPaused": "视频已暂停：网络不佳（仅音频）",
    "error.share": "无法共享屏幕",
    "tile.eject": "请出",
    "tile.ejectLabel": "将{name}请出庭审",
    "tile.ejectConfirm": "再次点击确认",
    "tile.ejectConfirmLabel": "再次点击以将{name}请出庭审",
    "pause.reason.recess": "休庭",
    "pause.reason.non-public-evidence": "不公开质证",
    "pause.reason.mediation": "调解",

    // Hearing page: recording state (every hearing is recorded)
    "recording.on": "录制中 REC",
    "recording.paused": "录制已暂停：{reason}",
    "recording.pausedNoReason": "录制已暂停",

    // Participant tiles
    "tile.label": "{name}（{role}）",
    "tile.labelWithCourt": "{name}（{role}，{court}）",
    "tile.court": "所在法院：{court}",
    "tile.mutedAudio": "已静音",
    "tile.mutedVideo": "摄像头已关闭",
    "tile.noVideo": "无画面",
    "role.judge": "法官",
    "role.clerk": "书记员",
    "role.prosecutor": "公诉人",
    "role.defence": "辩护人",
    "role.party": "当事人",
    "role.defendant": "被告人",
    "role.witness": "证人",
    "role.interpreter": "翻译人员",
    "role.observer": "旁听人员",
    "role.archivist": "档案管理员",
    "role.admin": "系统管理员",

    // Connection banner
    "state.connecting": "正在连接…",
    "state.connected": "已连接",
    "state.reconnecting": "连接中断，正在重新连接…",
    "state.reconnectingIn": "连接中断，{seconds} 秒后第 {attempt} 次重新连接…",
    "state.failed": "连接失败",
    "state.left": "您已离开庭审",
    "state.ended": "庭审已结束",
    "state.refused": "未获准许进入",
    "state.ejected": "您已被请出庭审",

    // Closed screens
    "closed.left.title": "您已离开庭审",
    "closed.left.body": "如需返回，请点击“重新加入”。",
    "closed.ended.title": "庭审已结束",
    "closed.ended.body": "本次庭审已由法庭结束。感谢您的参与。",
    "closed.failed.title": "无法加入庭审",
    "closed.rejoin": "重新加入",
    "closed.replaced": "您已在其他窗口或设备上加入本次庭审，此窗口已断开。",
    "closed.refused.title": "未获准许进入",
    "closed.refused.body": "审判长未准许您进入本次庭审。如有疑问，请与法院联系。",
    "closed.ejected.title": "您已被请出庭审",
    "closed.ejected.body": "审判长已将您请出本次庭审，您的入庭链接和入庭码已失效。",

    // Toasts
    "toast.close": "关闭",
    "toast.error": "错误 {code}：{text}",

    // Server error codes (PROTOCOL.md)
    "error.bad-json": "消息格式错误。",
    "error.too-large": "消息过大。",
    "error.bad-message": "消息内容无效。",
    "error.unknown-type": "未知的消息类型。",
    "error.not-joined": "尚未加入庭审。",
    "error.already-joined": "已经加入庭审。",
    "error.bad-token": "入庭链接无效。",
    "error.token-expired": "入庭链接已过期，请向法院索取新的链接。",
    "error.hearing-not-found": "找不到该庭审。",
    "error.hearing-ended": "庭审已结束。",
    "error.bad-sdp": "媒体协商失败。",
    "error.stale-answer": "媒体协商已过时。",
    "error.rate-limited": "操作过于频繁，请稍候。",
    "error.forbidden": "无权执行此操作。",
    "error.internal": "服务器内部错误。",
    "error.negotiation": "媒体协商失败，正在重新连接。",
    "error.not-connected": "未连接到服务器，操作未发送。",
    "error.unknown": "发生未知错误。",
    // Archive page (/archive)
    "archive.title": "录像档案 — Tingshen",
    "archive.heading": "录像档案",
    "archive.token.label": "档案访问凭证",
    "archive.token.hint": "请粘贴档案管理员凭证（由管理员通过 tingshen token --role archivist 签发）。",
    "archive.token.submit": "登录",
    "archive.token.signOut": "退出",
    "archive.search.heading": "查找录像",
    "archive.search.court": "法院代码",
    "archive.search.case": "案号",
    "archive.search.participant": "参与人",
    "archive.search.kind": "类型",
    "archive.search.kindAny": "全部",
    "archive.search.since": "起始日期",
    "archive.search.until": "截止日期",
    "archive.search.submit": "查找",
    "archive.search.working": "正在查找…",
    "archive.results.none": "没有符合条件的录像。",
    "archive.results.count": "共 {count} 条录像",
    "archive.result.segments": "{count} 个片段",
    "archive.result.sealed": "已封存",
    "archive.status.complete": "已完成",
    "archive.status.recording": "录制中",
    "archive.status.interrupted": "中断",
    "archive.status.failed": "失败",
    "archive.detail.empty": "请在左侧选择一条录像。",
    "archive.detail.participants": "参与人：{names}",
    "archive.detail.time": "时间：{start} — {end}",
    "archive.player.source": "播放内容",
    "archive.player.composite": "合成画面（法庭所见）",
    "archive.player.track": "{name} · {kind}",
    "archive.player.none": "此录像没有可播放的画面。",
    "archive.timeline.heading": "时间轴",
    "archive.timeline.empty": "没有时间轴事件。",
    "archive.timeline.seek": "跳转到 {time}",
    "archive.event.join": "{name} 加入",
    "archive.event.joinAtCourt": "{name} 加入（{court}）",
    "archive.event.leave": "{name} 离开",
    "archive.event.note": "庭审笔录：{text}",
    "archive.event.gap": "暂停录制（{reason}）",
    "archive.event.recording-paused": "暂停录制：{reason}",
    "archive.event.recording-resumed": "恢复录制",
    "archive.event.end": "录制结束",
    "archive.event.exhibit": "证据：{name}（{role} {by} 出示）",
    "archive.event.other": "{kind}",
    "archive.reason.recess": "休庭",
    "archive.reason.non-public-evidence": "不公开质证",
    "archive.reason.mediation": "调解",
    "archive.integrity.heading": "完整性",
    "archive.integrity.unknown": "尚未校验",
    "archive.integrity.ok": "校验通过",
    "archive.integrity.failed": "校验失败",
    "archive.verify": "立即校验",
    "archive.verify.working": "正在校验…",
    "archive.verify.ok": "校验通过：{segments} 个片段，签名与哈希链完好。",
    "archive.verify.failed": "校验失败：{count} 处问题。",
    "archive.export": "导出证据包",
    "archive.files.heading": "文件",
    "archive.files.download": "下载",
    "archive.exhibit.hash": "SHA-256 哈希",
    "archive.exhibit.size": "{size} 字节",
    "archive.exhibit.download": "下载证据",
    "archive.error.unauthorized": "凭证无效或已过期，请重新登录。",
    "archive.error.forbidden": "无权查看此录像（可能已封存）。",
    "archive.error.notFound": "未找到该录像。",
    "archive.error.badQuery": "查询条件有误：{message}",
    "archive.error.network": "无法连接服务器，请检查网络后重试。",
    "archive.error.server": "服务器暂时无法处理请求（{status}）。",
  },

  en: {
    "lang.name": "English",
    "lang.label": "Language",
    "app.name": "Tingshen 庭审",
    "app.tagline": "Remote video hearings for the people's courts",

    "landing.title": "Tingshen 庭审",
    "landing.intro":
      "Enter the join code the court gave you to join a hearing. If you received a hearing link, just open it.",
    "landing.code.label": "Join code",
    "landing.submit": "Join",
    "landing.working": "Checking…",
    "landing.error.empty": "Please enter a join code.",
    "landing.error.invalid": "This join code is not valid or has expired. Please check it and try again.",
    "landing.error.rateLimited": "Too many attempts. Please wait a moment and try again.",
    "landing.error.network": "Cannot reach the server. Please check the network and try again.",
    "landing.error.server": "The server could not handle the request ({status}). Please try again later.",

    "hearing.title": "Hearing — Tingshen",
    "hearing.titleWithCase": "{caseNumber} — Hearing — Tingshen",
    "hearing.caseNumber": "Case number",
    "hearing.court": "Court",
    "hearing.caseUnknown": "Case number and court are shown after joining",
    "hearing.you": "You: {name} ({role})",

    "prejoin.heading": "Device check",
    "prejoin.intro": "Check your camera picture and microphone, then join the hearing.",
    "prejoin.camera": "Camera",
    "prejoin.microphone": "Microphone",
    "prejoin.noCamera": "No camera",
    "prejoin.noMicrophone": "No microphone",
    "prejoin.deviceUnnamed": "Device {n}",
    "prejoin.previewOff": "Camera is off",
    "prejoin.join": "Join hearing",
    "prejoin.noToken":
      "This link has no hearing credential. Please use the full link or the join code the court gave you.",
    "prejoin.toLanding": "Enter a join code",

    "media.insecure":
      "This page is not served over a secure connection (HTTPS), so the browser blocks the camera and microphone. You can still join to watch and listen.",
    "media.unsupported":
      "This browser does not support cameras and microphones. You can still join to watch and listen.",
    "media.video.denied":
      "Camera permission was denied. You can still join, but others will not see you.",
    "media.video.notFound": "No camera found. You can still join, but others will not see you.",
    "media.video.inUse":
      "The camera is in use by another program. You can still join, but others will not see you.",
    "media.video.failed": "The camera could not be opened. You can still join, but others will not see you.",
    "media.audio.denied":
      "Microphone permission was denied. You can still join, but others will not hear you.",
    "media.audio.notFound": "No microphone found. You can still join, but others will not hear you.",
    "media.audio.inUse":
      "The microphone is in use by another program. You can still join, but others will not hear you.",
    "media.audio.failed":
      "The microphone could not be opened. You can still join, but others will not hear you.",
    "media.audioBlocked": "The browser blocked sound from playing. Click anywhere on the page to turn sound on.",

    "room.grid": "Participants",
    "room.waiting": "Waiting for other participants to join…",
    "room.selfView": "Your picture",
    "room.observers": "{n} observing",
    "room.controls": "Hearing controls",
    "control.mute": "Mute",
    "control.cameraOff": "Camera off",
    "control.leave": "Leave hearing",
    "control.noMicrophone": "No microphone",
    "control.noCamera": "No camera",

    "lobby.heading": "Please wait: the presiding judge will admit you",
    "lobby.body":
      "You are waiting to enter the hearing. You will be let in automatically when the judge admits you; please keep this page open.",
    "lobby.leave": "Leave",

    "staff.panel": "Running the hearing",
    "lobbyPanel.heading": "Waiting to enter",
    "lobbyPanel.empty": "No one is waiting",
    "lobbyPanel.readOnly": "The presiding judge admits or refuses.",
    "lobbyPanel.admit": "Admit",
    "lobbyPanel.admitLabel": "Admit {name}",
    "lobbyPanel.refuse": "Refuse",
    "lobbyPanel.refuseLabel": "Refuse {name}",
    "notes.heading": "Hearing log",
    "notes.label": "Note",
    "notes.placeholder": "e.g. oath taken; exhibit 3 shown",
    "notes.hint": "Ctrl+Enter to add",
    "notes.submit": "Add note",
    "notes.empty": "No notes yet",

    "judge.controls": "Presiding judge's controls",
    "judge.pauseReason": "Reason for pausing the recording",
    "judge.pause": "Pause recording",
    "judge.resume": "Resume recording",
    "judge.end": "End hearing",
    "judge.endConfirm": "Click again to end the hearing",
    "judge.floor": "The floor",
    "judge.giveFloor": "Give the floor to {name}",
    "judge.giveFloorLabel": "Give the floor to {name}",
    "judge.takeFloor": "Take the floor back",
    "tile.muteParticipant": "Mute",
    "tile.unmuteParticipant": "Unmute",
    "tile.muteParticipantLabel": "Mute {name}",
    "tile.unmuteParticipantLabel": "Unmute {name}",
    "tile.hasFloor": "has the floor",
    "tile.silenced": "muted by the judge",
    "tile.requestingFloor": "asks for the floor",
    "tile.spotlight": "Spotlight",
    "tile.unspotlight": "End spotlight",
    "tile.spotlightLabel": "Show {name} large to everyone",
    "tile.unspotlightLabel": "Stop showing {name} large",
    "tile.spotlighted": "Spotlight",
    "quality.good": "Good connection",
    "quality.poor": "Poor connection",
    "quality.bad": "Bad connection",
    "quality.title": "{level}: round trip {rttMs} ms, loss in {lossInPct}% / out {lossOutPct}%, {kbpsIn} kbps in / {kbpsOut} kbps out",
    "control.requestFloor": "Request the floor",
    "control.floorRequested": "Floor requested",
    "control.hasFloor": "You have the floor",
    "control.silenced": "You are muted by the judge",
    "control.spotlighted": "You are in the spotlight: everyone sees you large",
    "control.share": "Share screen",
    "control.stopShare": "Stop sharing",
    "control.consult": "Private consultation",
    "room.videoPaused": "Video paused: poor connection (audio only)",
    "error.share": "Could not share the screen",
    "tile.eject": "Remove",
    "tile.ejectLabel": "Remove {name} from the hearing",
    "tile.ejectConfirm": "Click again to confirm",
    "tile.ejectConfirmLabel": "Click again to remove {name} from the hearing",
    "pause.reason.recess": "Recess",
    "pause.reason.non-public-evidence": "Non-public evidence examination",
    "pause.reason.mediation": "Mediation",

    "recording.on": "Recording · REC",
    "recording.paused": "Recording paused: {reason}",
    "recording.pausedNoReason": "Recording paused",

    "tile.label": "{name} ({role})",
    "tile.labelWithCourt": "{name} ({role}, {court})",
    "tile.court": "At {court}",
    "tile.mutedAudio": "Muted",
    "tile.mutedVideo": "Camera off",
    "tile.noVideo": "No picture",
    "role.judge": "Judge",
    "role.clerk": "Clerk",
    "role.prosecutor": "Prosecutor",
    "role.defence": "Defence counsel",
    "role.party": "Party",
    "role.defendant": "Defendant",
    "role.witness": "Witness",
    "role.interpreter": "Interpreter",
    "role.observer": "Observer",
    "role.archivist": "Archivist",
    "role.admin": "Administrator",

    "state.connecting": "Connecting…",
    "state.connected": "Connected",
    "state.reconnecting": "Connection lost, reconnecting…",
    "state.reconnectingIn": "Connection lost, reconnecting in {seconds} s (attempt {attempt})…",
    "state.failed": "Connection failed",
    "state.left": "You left the hearing",
    "state.ended": "The hearing has ended",
    "state.refused": "Not admitted",
    "state.ejected": "You were removed from the hearing",

    "closed.left.title": "You left the hearing",
    "closed.left.body": "To return, press “Rejoin”.",
    "closed.ended.title": "The hearing has ended",
    "closed.ended.body": "The court has ended this hearing. Thank you for taking part.",
    "closed.failed.title": "Cannot join the hearing",
    "closed.rejoin": "Rejoin",
    "closed.replaced": "You joined this hearing from another window or device; this window was disconnected.",
    "closed.refused.title": "Not admitted",
    "closed.refused.body":
      "The presiding judge did not admit you to this hearing. If you have questions, please contact the court.",
    "closed.ejected.title": "You were removed from the hearing",
    "closed.ejected.body":
      "The presiding judge removed you from this hearing; your hearing link and join code no longer work.",

    "toast.close": "Close",
    "toast.error": "Error {code}: {text}",

    "error.bad-json": "Malformed message.",
    "error.too-large": "Message too large.",
    "error.bad-message": "Invalid message.",
    "error.unknown-type": "Unknown message type.",
    "error.not-joined": "Not joined yet.",
    "error.already-joined": "Already joined.",
    "error.bad-token": "This hearing link is not valid.",
    "error.token-expired": "This hearing link has expired. Please ask the court for a new one.",
    "error.hearing-not-found": "Hearing not found.",
    "error.hearing-ended": "The hearing has ended.",
    "error.bad-sdp": "Media negotiation failed.",
    "error.stale-answer": "Outdated media negotiation.",
    "error.rate-limited": "Too many messages; please wait.",
    "error.forbidden": "You are not allowed to do that.",
    "error.internal": "Internal server error.",
    "error.negotiation": "Media negotiation failed; reconnecting.",
    "error.not-connected": "Not connected to the server; the action was not sent.",
    "error.unknown": "An unknown error occurred.",
    "archive.title": "Recording archive — Tingshen",
    "archive.heading": "Recording archive",
    "archive.token.label": "Archive access token",
    "archive.token.hint": "Paste your archivist token (issued by an administrator with tingshen token --role archivist).",
    "archive.token.submit": "Sign in",
    "archive.token.signOut": "Sign out",
    "archive.search.heading": "Find recordings",
    "archive.search.court": "Court code",
    "archive.search.case": "Case number",
    "archive.search.participant": "Participant",
    "archive.search.kind": "Kind",
    "archive.search.kindAny": "Any",
    "archive.search.since": "From",
    "archive.search.until": "Until",
    "archive.search.submit": "Search",
    "archive.search.working": "Searching…",
    "archive.results.none": "No recording matches.",
    "archive.results.count": "{count} recording(s)",
    "archive.result.segments": "{count} segments",
    "archive.result.sealed": "Sealed",
    "archive.status.complete": "Complete",
    "archive.status.recording": "Recording",
    "archive.status.interrupted": "Interrupted",
    "archive.status.failed": "Failed",
    "archive.detail.empty": "Choose a recording on the left.",
    "archive.detail.participants": "Participants: {names}",
    "archive.detail.time": "Time: {start} — {end}",
    "archive.player.source": "Play",
    "archive.player.composite": "Composite (what the court saw)",
    "archive.player.track": "{name} · {kind}",
    "archive.player.none": "This recording has nothing to play.",
    "archive.timeline.heading": "Timeline",
    "archive.timeline.empty": "No timeline events.",
    "archive.timeline.seek": "Go to {time}",
    "archive.event.join": "{name} joined",
    "archive.event.joinAtCourt": "{name} joined ({court})",
    "archive.event.leave": "{name} left",
    "archive.event.note": "Hearing log: {text}",
    "archive.event.gap": "Recording paused ({reason})",
    "archive.event.recording-paused": "Recording paused: {reason}",
    "archive.event.recording-resumed": "Recording resumed",
    "archive.event.end": "Recording ended",
    "archive.event.exhibit": "Exhibit: {name} (shown by {by}, {role})",
    "archive.event.other": "{kind}",
    "archive.reason.recess": "recess",
    "archive.reason.non-public-evidence": "non-public evidence examination",
    "archive.reason.mediation": "mediation",
    "archive.integrity.heading": "Integrity",
    "archive.integrity.unknown": "Not verified yet",
    "archive.integrity.ok": "Verified",
    "archive.integrity.failed": "Verification failed",
    "archive.verify": "Verify now",
    "archive.verify.working": "Verifying…",
    "archive.verify.ok": "Verified: {segments} segments; signature and hash chain intact.",
    "archive.verify.failed": "Verification failed: {count} problem(s).",
    "archive.export": "Export evidence bundle",
    "archive.files.heading": "Files",
    "archive.files.download": "Download",
    "archive.exhibit.hash": "SHA-256 hash",
    "archive.exhibit.size": "{size} bytes",
    "archive.exhibit.download": "Download exhibit",
    "archive.error.unauthorized": "The token is invalid or has expired; please sign in again.",
    "archive.error.forbidden": "You may not see this recording (it may be sealed).",
    "archive.error.notFound": "Recording not found.",
    "archive.error.badQuery": "The search is malformed: {message}",
    "archive.error.network": "Cannot reach the server; check the network and try again.",
    "archive.error.server": "The server could not handle the request ({status}).",
  },

  // Tibetan (བོད་ཡིག): a DRAFT translation, written for the Ganzi courts by the engineering team and NOT yet
  // reviewed. The courts' qualified translators must review every string (legal terms first: ཞིབ་གཅོད་དཔོན་
  // presiding judge, ཉེས་གཏུག་ཐེབས་མཁན་ defendant, སྤྱི་གཏུག་པ་ prosecutor, ངོ་ལེན་པ་ defence) before it
  // is relied on in a hearing. Conventions: every syllable ends in a tsheg except before a shad (ང keeps
  // its tsheg: ང་།); no shad after a final ག; labels carry no final shad, sentences do. Placeholders
  // stand on their own (a particle after {name} cannot agree with an unknown final letter, so only ལ་
  // follows one). tests/test_i18n.py checks that every zh-CN key is here with the same placeholders.
  bo: {
    "lang.name": "བོད་ཡིག",
    "lang.label": "སྐད་ཡིག",
    "app.name": "Tingshen 庭审",
    "app.tagline": "མི་དམངས་ཁྲིམས་ཁང་གི་རྒྱང་རིང་བརྙན་འཕྲིན་ཁྲིམས་ཞིབ་མ་ལག",

    "landing.title": "Tingshen 庭审",
    "landing.intro":
      "ཁྲིམས་ཁང་ནས་སྤྲད་པའི་ཞུགས་ཨང་ནང་འཇུག་བྱས་ནས་ཁྲིམས་ཞིབ་ལ་ཞུགས་རོགས། གལ་ཏེ་ཁྱེད་ལ་ཁྲིམས་ཞིབ་ཀྱི་སྦྲེལ་ཐག་འབྱོར་ཡོད་ན། སྦྲེལ་ཐག་དེ་ཐད་ཀར་ཁ་ཕྱེ་རོགས།",
    "landing.code.label": "ཞུགས་ཨང",
    "landing.submit": "ཞུགས",
    "landing.working": "ཞིབ་བཤེར་བྱེད་བཞིན་པ…",
    "landing.error.empty": "ཞུགས་ཨང་ནང་འཇུག་གནང་རོགས།",
    "landing.error.invalid": "ཞུགས་ཨང་ནུས་མེད་ཡིན་པའམ་དུས་ཚོད་ཡོལ་ཟིན། ཞིབ་བཤེར་བྱས་ནས་ཡང་བསྐྱར་ཚོད་ལྟ་བྱེད་རོགས།",
    "landing.error.rateLimited": "ཚོད་ལྟ་ཐེངས་གྲངས་མང་དྲགས་སོང་། ཅུང་ཙམ་སྒུག་ནས་ཡང་བསྐྱར་ཚོད་ལྟ་བྱེད་རོགས།",
    "landing.error.network": "ཞབས་ཞུ་ཆས་དང་འབྲེལ་མཐུད་བྱེད་ཐབས་མེད། དྲ་རྒྱ་ཞིབ་བཤེར་བྱས་ནས་ཡང་བསྐྱར་ཚོད་ལྟ་བྱེད་རོགས།",
    "landing.error.server":
      "ཞབས་ཞུ་ཆས་ཀྱིས་གནས་སྐབས་རེ་ཞུ་སྒྲུབ་མ་ཐུབ། ({status}) ཅུང་ཙམ་རྗེས་སུ་ཡང་བསྐྱར་ཚོད་ལྟ་བྱེད་རོགས།",

    "hearing.title": "ཁྲིམས་ཞིབ — Tingshen",
    "hearing.titleWithCase": "{caseNumber} — ཁྲིམས་ཞིབ — Tingshen",
    "hearing.caseNumber": "གྱོད་དོན་ཨང་རྟགས",
    "hearing.court": "ཁྲིམས་ཁང",
    "hearing.caseUnknown": "ཞུགས་རྗེས་སུ་གྱོད་དོན་ཨང་རྟགས་དང་ཁྲིམས་ཁང་སྟོན་གྱི་ཡོད།",
    "hearing.you": "ཁྱེད་རང: {name} ({role})",

    "prejoin.heading": "སྒྲིག་ཆས་ཞིབ་བཤེར",
    "prejoin.intro": "པར་ཆས་ཀྱི་པར་རིས་དང་སྒྲ་ལེན་ཆས་ལ་ཞིབ་བཤེར་བྱས་རྗེས་ཁྲིམས་ཞིབ་ལ་ཞུགས་རོགས།",
    "prejoin.camera": "པར་ཆས",
    "prejoin.microphone": "སྒྲ་ལེན་ཆས",
    "prejoin.noCamera": "པར་ཆས་མི་བེད་སྤྱོད",
    "prejoin.noMicrophone": "སྒྲ་ལེན་ཆས་མི་བེད་སྤྱོད",
    "prejoin.deviceUnnamed": "སྒྲིག་ཆས་ {n}",
    "prejoin.previewOff": "པར་ཆས་ཁ་ཕྱེ་མེད",
    "prejoin.join": "ཁྲིམས་ཞིབ་ལ་ཞུགས",
    "prejoin.noToken":
      "སྦྲེལ་ཐག་འདིའི་ནང་ཁྲིམས་ཞིབ་ལ་ཞུགས་པའི་ལག་འཁྱེར་མི་འདུག ཁྲིམས་ཁང་ནས་སྤྲད་པའི་སྦྲེལ་ཐག་ཆ་ཚང་ངམ་ཞུགས་ཨང་བེད་སྤྱོད་གནང་རོགས།",
    "prejoin.toLanding": "ཞུགས་ཨང་ནང་འཇུག",

    "media.insecure":
      "དྲ་ངོས་འདི་བདེ་འཇགས་འབྲེལ་མཐུད་ (HTTPS) བརྒྱུད་ནས་ཁ་ཕྱེ་མེད་པས། བཤར་ཆས་ཀྱིས་པར་ཆས་དང་སྒྲ་ལེན་ཆས་བེད་སྤྱོད་བྱེད་དུ་མི་འཇུག ཁྱེད་ཀྱིས་ད་དུང་ཁྲིམས་ཞིབ་ལ་ཞུགས་ནས་ལྟ་ཉན་བྱེད་ཐུབ།",
    "media.unsupported":
      "བཤར་ཆས་འདིས་པར་ཆས་དང་སྒྲ་ལེན་ཆས་ལ་རྒྱབ་སྐྱོར་མི་བྱེད། ཁྱེད་ཀྱིས་ད་དུང་ཁྲིམས་ཞིབ་ལ་ཞུགས་ནས་ལྟ་ཉན་བྱེད་ཐུབ།",
    "media.video.denied":
      "པར་ཆས་བེད་སྤྱོད་པའི་ཆོག་མཆན་ཁས་མ་བླངས། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་པར་རིས་མཐོང་མི་ཐུབ།",
    "media.video.notFound":
      "པར་ཆས་རྙེད་མ་སོང་། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་པར་རིས་མཐོང་མི་ཐུབ།",
    "media.video.inUse":
      "མཉེན་ཆས་གཞན་ཞིག་གིས་པར་ཆས་བེད་སྤྱོད་བཞིན་ཡོད། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་པར་རིས་མཐོང་མི་ཐུབ།",
    "media.video.failed":
      "པར་ཆས་ཁ་ཕྱེ་ཐབས་མ་བྱུང་། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་པར་རིས་མཐོང་མི་ཐུབ།",
    "media.audio.denied":
      "སྒྲ་ལེན་ཆས་བེད་སྤྱོད་པའི་ཆོག་མཆན་ཁས་མ་བླངས། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་སྐད་སྒྲ་གོ་མི་ཐུབ།",
    "media.audio.notFound":
      "སྒྲ་ལེན་ཆས་རྙེད་མ་སོང་། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་སྐད་སྒྲ་གོ་མི་ཐུབ།",
    "media.audio.inUse":
      "མཉེན་ཆས་གཞན་ཞིག་གིས་སྒྲ་ལེན་ཆས་བེད་སྤྱོད་བཞིན་ཡོད། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་སྐད་སྒྲ་གོ་མི་ཐུབ།",
    "media.audio.failed":
      "སྒྲ་ལེན་ཆས་ཁ་ཕྱེ་ཐབས་མ་བྱུང་། ཁྱེད་ཀྱིས་ད་དུང་ཞུགས་ཆོག་ཀྱང་། གཞན་གྱིས་ཁྱེད་ཀྱི་སྐད་སྒྲ་གོ་མི་ཐུབ།",
    "media.audioBlocked":
      "བཤར་ཆས་ཀྱིས་སྐད་སྒྲ་རང་འགུལ་གྱིས་གཏོང་བ་བཀག་ཡོད། སྐད་སྒྲ་ཁ་ཕྱེ་བར་དྲ་ངོས་གང་རུང་ཞིག་ལ་མནན་རོགས།",

    "room.grid": "ཞུགས་མཁན་གྱི་པར་རིས",
    "room.waiting": "ཞུགས་མཁན་གཞན་དག་ལ་སྒུག་བཞིན་པ…",
    "room.selfView": "རང་གི་པར་རིས",
    "room.observers": "ཟུར་ཉན་པ་ {n}",
    "room.controls": "ཁྲིམས་ཞིབ་ཚོད་འཛིན",
    "control.mute": "སྒྲ་འགོག",
    "control.cameraOff": "པར་ཆས་ཁ་རྒྱག",
    "control.leave": "ཁྲིམས་ཞིབ་ནས་ཕྱིར་ཐོན",
    "control.noMicrophone": "སྒྲ་ལེན་ཆས་མེད",
    "control.noCamera": "པར་ཆས་མེད",

    "lobby.heading": "ཅུང་ཙམ་སྒུག་རོགས། ཞིབ་གཅོད་དཔོན་གྱིས་ཁྱེད་ནང་དུ་འཛུལ་བཅུག་གི་རེད།",
    "lobby.body":
      "ཁྱེད་ཁྲིམས་ཞིབ་ལ་སྒུག་བཞིན་ཡོད། ཞིབ་གཅོད་དཔོན་གྱིས་ཆོག་མཆན་སྤྲད་རྗེས་རང་འགུལ་གྱིས་ཁྲིམས་ཞིབ་ནང་འཛུལ་ངེས་ཡིན་པས། དྲ་ངོས་འདི་ཁ་མ་རྒྱག་རོགས།",
    "lobby.leave": "ཕྱིར་ཐོན",

    "staff.panel": "ཁྲིམས་ཞིབ་དོ་དམ",
    "lobbyPanel.heading": "ནང་འཛུལ་སྒུག་མཁན",
    "lobbyPanel.empty": "སྒུག་མཁན་མེད",
    "lobbyPanel.readOnly": "ནང་འཛུལ་ཆོག་མིན་ཞིབ་གཅོད་དཔོན་གྱིས་ཐག་གཅོད་བྱེད།",
    "lobbyPanel.admit": "ནང་འཛུལ་ཆོག",
    "lobbyPanel.admitLabel": "{name} ལ་ནང་འཛུལ་ཆོག་མཆན་སྤྲོད",
    "lobbyPanel.refuse": "ཁས་མི་ལེན",
    "lobbyPanel.refuseLabel": "{name} ལ་ནང་འཛུལ་མི་ཆོག",
    "notes.heading": "ཁྲིམས་ཞིབ་ཟིན་ཐོ",
    "notes.label": "ཟིན་ཐོའི་ནང་དོན",
    "notes.placeholder": "དཔེར་ན། མནའ་བསྐྱལ། དཔང་རྟགས་ཨང་ 3 བསྟན།",
    "notes.hint": "Ctrl+Enter མནན་ནས་ཁ་སྣོན",
    "notes.submit": "ཟིན་ཐོ་ཁ་སྣོན",
    "notes.empty": "ད་དུང་ཟིན་ཐོ་མེད",

    "judge.controls": "ཞིབ་གཅོད་དཔོན་གྱི་ཚོད་འཛིན",
    "judge.pauseReason": "བརྙན་ཟིན་མཚམས་འཇོག་པའི་རྒྱུ་མཚན",
    "judge.pause": "བརྙན་ཟིན་མཚམས་འཇོག",
    "judge.resume": "བརྙན་ཟིན་མུ་མཐུད",
    "judge.end": "ཁྲིམས་ཞིབ་མཇུག་སྒྲིལ",
    "judge.endConfirm": "ཁྲིམས་ཞིབ་མཇུག་སྒྲིལ་བར་ཡང་བསྐྱར་མནན་རོགས།",
    "judge.floor": "བཤད་དབང་དོ་དམ",
    "judge.giveFloor": "{name} ལ་བཤད་དབང་སྤྲོད",
    "judge.giveFloorLabel": "{name} ལ་བཤད་དབང་སྤྲོད",
    "judge.takeFloor": "བཤད་དབང་ཕྱིར་ལེན",
    "tile.muteParticipant": "སྒྲ་འགོག",
    "tile.unmuteParticipant": "སྒྲ་འགོག་ཕྱིར་འཐེན",
    "tile.muteParticipantLabel": "{name} ལ་སྒྲ་འགོག",
    "tile.unmuteParticipantLabel": "{name} ལ་སྒྲ་འགོག་ཕྱིར་འཐེན",
    "tile.hasFloor": "བཤད་བཞིན་པ",
    "tile.silenced": "ཞིབ་གཅོད་དཔོན་གྱིས་སྒྲ་བཀག་ཡོད",
    "tile.requestingFloor": "བཤད་དབང་ཞུ་བཞིན་པ",
    "tile.spotlight": "གཙོ་བོར་སྟོན",
    "tile.unspotlight": "གཙོ་བོར་སྟོན་པ་ཕྱིར་འཐེན",
    "tile.spotlightLabel": "{name} ཚང་མར་པར་རིས་ཆེན་པོར་སྟོན",
    "tile.unspotlightLabel": "{name} པར་རིས་ཆེན་པོར་སྟོན་པ་མཚམས་འཇོག",
    "tile.spotlighted": "གཙོ་བོའི་པར་རིས",
    "quality.good": "འབྲེལ་མཐུད་ཡག་པོ",
    "quality.poor": "འབྲེལ་མཐུད་ཞན་པ",
    "quality.bad": "འབྲེལ་མཐུད་ཧ་ཅང་ཞན་པ",
    "quality.title":
      "{level}: འགྲོ་ལྡོག་དུས་ཡུན་ {rttMs} ms, ཐུམ་བུ་བོར་ཚད་ ལེན་ {lossInPct}% / གཏོང་ {lossOutPct}%, མྱུར་ཚད་ ལེན་ {kbpsIn} / གཏོང་ {kbpsOut} kbps",
    "control.requestFloor": "བཤད་དབང་ཞུ",
    "control.floorRequested": "བཤད་དབང་ཞུས་ཟིན",
    "control.hasFloor": "ཁྱེད་བཤད་བཞིན་ཡོད",
    "control.silenced": "ཞིབ་གཅོད་དཔོན་གྱིས་ཁྱེད་ཀྱི་སྒྲ་བཀག་ཡོད",
    "control.spotlighted": "ཁྱེད་གཙོ་བོའི་པར་རིས་ཡིན: ཚང་མས་ཁྱེད་ཀྱི་པར་རིས་ཆེན་པོ་མཐོང་གི་ཡོད།",
    "control.share": "འཆར་ངོས་མཉམ་སྤྱོད",
    "control.stopShare": "མཉམ་སྤྱོད་མཚམས་འཇོག",
    "control.consult": "སྒེར་གྱི་གྲོས་བསྡུར",
    "room.videoPaused": "དྲ་རྒྱ་ཞན་པས་བརྙན་འཕྲིན་མཚམས་བཞག་ཡོད། (སྐད་སྒྲ་ཁོ་ན)",
    "error.share": "འཆར་ངོས་མཉམ་སྤྱོད་བྱེད་ཐབས་མ་བྱུང་།",
    "tile.eject": "ཕྱིར་འབུད",
    "tile.ejectLabel": "{name} ཁྲིམས་ཞིབ་ནས་ཕྱིར་འབུད",
    "tile.ejectConfirm": "གཏན་འཁེལ་བྱེད་པར་ཡང་བསྐྱར་མནན་རོགས།",
    "tile.ejectConfirmLabel": "{name} ཁྲིམས་ཞིབ་ནས་ཕྱིར་འབུད་པར་ཡང་བསྐྱར་མནན་རོགས།",
    "pause.reason.recess": "ཁྲིམས་ཞིབ་བར་མཚམས",
    "pause.reason.non-public-evidence": "སྤྱི་ལ་མི་སྟོན་པའི་དཔང་རྟགས་ཞིབ་དཔྱད",
    "pause.reason.mediation": "བར་འདུམ",

    "recording.on": "བརྙན་ཟིན་བྱེད་བཞིན་པ REC",
    "recording.paused": "བརྙན་ཟིན་མཚམས་བཞག་ཡོད: {reason}",
    "recording.pausedNoReason": "བརྙན་ཟིན་མཚམས་བཞག་ཡོད",

    "tile.label": "{name} ({role})",
    "tile.labelWithCourt": "{name} ({role}) ཁྲིམས་ཁང: {court}",
    "tile.court": "ཁྲིམས་ཁང: {court}",
    "tile.mutedAudio": "སྒྲ་བཀག་ཡོད",
    "tile.mutedVideo": "པར་ཆས་ཁ་བརྒྱབ་ཡོད",
    "tile.noVideo": "པར་རིས་མེད",
    "role.judge": "ཁྲིམས་དཔོན",
    "role.clerk": "ཟིན་བྲིས་པ",
    "role.prosecutor": "སྤྱི་གཏུག་པ",
    "role.defence": "ངོ་ལེན་པ",
    "role.party": "དོན་གཏོགས་པ",
    "role.defendant": "ཉེས་གཏུག་ཐེབས་མཁན",
    "role.witness": "དཔང་པོ",
    "role.interpreter": "སྐད་སྒྱུར་བ",
    "role.observer": "ཟུར་ཉན་པ",
    "role.archivist": "ཡིག་ཚགས་དོ་དམ་པ",
    "role.admin": "མ་ལག་དོ་དམ་པ",

    "state.connecting": "འབྲེལ་མཐུད་བྱེད་བཞིན་པ…",
    "state.connected": "འབྲེལ་མཐུད་བྱས་ཟིན",
    "state.reconnecting": "འབྲེལ་མཐུད་ཆད་སོང་། ཡང་བསྐྱར་འབྲེལ་མཐུད་བྱེད་བཞིན་པ…",
    "state.reconnectingIn":
      "འབྲེལ་མཐུད་ཆད་སོང་། སྐར་ཆ་ {seconds} རྗེས་སུ་ཐེངས་ {attempt} པའི་ཡང་བསྐྱར་འབྲེལ་མཐུད་བྱེད་ངེས…",
    "state.failed": "འབྲེལ་མཐུད་མ་ཐུབ",
    "state.left": "ཁྱེད་ཁྲིམས་ཞིབ་ནས་ཕྱིར་ཐོན་ཟིན",
    "state.ended": "ཁྲིམས་ཞིབ་མཇུག་རྫོགས་ཟིན",
    "state.refused": "ནང་འཛུལ་ཆོག་མཆན་མ་ཐོབ",
    "state.ejected": "ཁྱེད་ཁྲིམས་ཞིབ་ནས་ཕྱིར་ཕུད་ཟིན",

    "closed.left.title": "ཁྱེད་ཁྲིམས་ཞིབ་ནས་ཕྱིར་ཐོན་ཟིན",
    "closed.left.body": "ཕྱིར་ལོག་དགོས་ན། “ཡང་བསྐྱར་ཞུགས” ཞེས་པ་མནན་རོགས།",
    "closed.ended.title": "ཁྲིམས་ཞིབ་མཇུག་རྫོགས་ཟིན",
    "closed.ended.body": "ཁྲིམས་ཁང་གིས་ཁྲིམས་ཞིབ་འདི་མཇུག་སྒྲིལ་ཟིན། ཁྱེད་ཞུགས་པར་ཐུགས་རྗེ་ཆེ།",
    "closed.failed.title": "ཁྲིམས་ཞིབ་ལ་ཞུགས་ཐབས་མ་བྱུང",
    "closed.rejoin": "ཡང་བསྐྱར་ཞུགས",
    "closed.replaced":
      "ཁྱེད་སྒེའུ་ཁུང་གཞན་ནམ་སྒྲིག་ཆས་གཞན་ཞིག་ནས་ཁྲིམས་ཞིབ་འདི་ལ་ཞུགས་ཟིན་པས། སྒེའུ་ཁུང་འདིའི་འབྲེལ་མཐུད་ཆད་ཟིན།",
    "closed.refused.title": "ནང་འཛུལ་ཆོག་མཆན་མ་ཐོབ",
    "closed.refused.body":
      "ཞིབ་གཅོད་དཔོན་གྱིས་ཁྱེད་ཁྲིམས་ཞིབ་འདིར་འཛུལ་དུ་མ་བཅུག དྲི་བ་ཡོད་ན་ཁྲིམས་ཁང་དང་འབྲེལ་བ་གནང་རོགས།",
    "closed.ejected.title": "ཁྱེད་ཁྲིམས་ཞིབ་ནས་ཕྱིར་ཕུད་ཟིན",
    "closed.ejected.body":
      "ཞིབ་གཅོད་དཔོན་གྱིས་ཁྱེད་ཁྲིམས་ཞིབ་འདི་ནས་ཕྱིར་ཕུད་ཟིན་པས། ཁྱེད་ཀྱི་ཞུགས་པའི་སྦྲེལ་ཐག་དང་ཞུགས་ཨང་ནུས་མེད་དུ་གྱུར་ཟིན།",

    "toast.close": "ཁ་རྒྱག",
    "toast.error": "ནོར་འཁྲུལ་ {code}: {text}",

    "error.bad-json": "ཆ་འཕྲིན་གྱི་རྣམ་གཞག་ནོར་བ།",
    "error.too-large": "ཆ་འཕྲིན་ཆེ་དྲགས་པ།",
    "error.bad-message": "ཆ་འཕྲིན་ནུས་མེད།",
    "error.unknown-type": "ཆ་འཕྲིན་གྱི་རིགས་ངོས་མ་ཟིན་པ།",
    "error.not-joined": "ད་དུང་ཁྲིམས་ཞིབ་ལ་ཞུགས་མེད།",
    "error.already-joined": "ཁྲིམས་ཞིབ་ལ་ཞུགས་ཟིན།",
    "error.bad-token": "ཁྲིམས་ཞིབ་ཀྱི་སྦྲེལ་ཐག་ནུས་མེད།",
    "error.token-expired": "ཁྲིམས་ཞིབ་ཀྱི་སྦྲེལ་ཐག་དུས་ཚོད་ཡོལ་ཟིན། ཁྲིམས་ཁང་ལ་སྦྲེལ་ཐག་གསར་པ་ཞིག་ཞུ་རོགས།",
    "error.hearing-not-found": "ཁྲིམས་ཞིབ་དེ་རྙེད་མ་སོང་།",
    "error.hearing-ended": "ཁྲིམས་ཞིབ་མཇུག་རྫོགས་ཟིན།",
    "error.bad-sdp": "སྨྱན་སྦྱོར་གྲོས་མོལ་མ་ཐུབ།",
    "error.stale-answer": "སྨྱན་སྦྱོར་གྲོས་མོལ་དུས་ཡོལ་ཟིན།",
    "error.rate-limited": "བཀོལ་སྤྱོད་མང་དྲགས་པས་ཅུང་ཙམ་སྒུག་རོགས།",
    "error.forbidden": "ཁྱེད་ལ་བཀོལ་སྤྱོད་འདི་བྱེད་པའི་དབང་ཚད་མེད།",
    "error.internal": "ཞབས་ཞུ་ཆས་ནང་ཁུལ་གྱི་ནོར་འཁྲུལ།",
    "error.negotiation": "སྨྱན་སྦྱོར་གྲོས་མོལ་མ་ཐུབ་པས་ཡང་བསྐྱར་འབྲེལ་མཐུད་བྱེད་བཞིན་ཡོད།",
    "error.not-connected": "ཞབས་ཞུ་ཆས་དང་འབྲེལ་མཐུད་མེད་པས་བཀོལ་སྤྱོད་བསྐུར་མ་སོང་།",
    "error.unknown": "ངོས་མ་ཟིན་པའི་ནོར་འཁྲུལ་ཞིག་བྱུང་།",

    "archive.title": "བརྙན་ཟིན་ཡིག་ཚགས — Tingshen",
    "archive.heading": "བརྙན་ཟིན་ཡིག་ཚགས",
    "archive.token.label": "ཡིག་ཚགས་ལྟ་ཆོག་པའི་ལག་འཁྱེར",
    "archive.token.hint":
      "ཡིག་ཚགས་དོ་དམ་པའི་ལག་འཁྱེར་སྦྱར་རོགས། ལག་འཁྱེར་དེ་མ་ལག་དོ་དམ་པས་ tingshen token --role archivist བརྒྱུད་ནས་སྤྲོད་ཀྱི་ཡོད།",
    "archive.token.submit": "ནང་འཛུལ",
    "archive.token.signOut": "ཕྱིར་ཐོན",
    "archive.search.heading": "བརྙན་ཟིན་འཚོལ་བ",
    "archive.search.court": "ཁྲིམས་ཁང་གི་ཨང་རྟགས",
    "archive.search.case": "གྱོད་དོན་ཨང་རྟགས",
    "archive.search.participant": "ཞུགས་མཁན",
    "archive.search.kind": "རིགས",
    "archive.search.kindAny": "ཚང་མ",
    "archive.search.since": "འགོ་འཛུགས་ཚེས་གྲངས",
    "archive.search.until": "མཇུག་སྒྲིལ་ཚེས་གྲངས",
    "archive.search.submit": "འཚོལ",
    "archive.search.working": "འཚོལ་བཞིན་པ…",
    "archive.results.none": "ཆ་རྐྱེན་དང་མཐུན་པའི་བརྙན་ཟིན་མེད།",
    "archive.results.count": "བརྙན་ཟིན་ཁྱོན་ {count}",
    "archive.result.segments": "དུམ་བུ་ {count}",
    "archive.result.sealed": "ཐམ་ག་བརྒྱབ་ཟིན",
    "archive.status.complete": "ལེགས་གྲུབ",
    "archive.status.recording": "བརྙན་ཟིན་བྱེད་བཞིན་པ",
    "archive.status.interrupted": "བར་ཆད",
    "archive.status.failed": "ཕམ་ཁ",
    "archive.detail.empty": "གཡོན་ཕྱོགས་ནས་བརྙན་ཟིན་ཞིག་འདེམས་རོགས།",
    "archive.detail.participants": "ཞུགས་མཁན: {names}",
    "archive.detail.time": "དུས་ཚོད: {start} — {end}",
    "archive.player.source": "གཏོང་རྒྱུའི་ནང་དོན",
    "archive.player.composite": "མཉམ་སྒྲིལ་པར་རིས་ (ཁྲིམས་ཁང་གིས་མཐོང་བ)",
    "archive.player.track": "{name} · {kind}",
    "archive.player.none": "བརྙན་ཟིན་འདི་ལ་གཏོང་རུང་བའི་པར་རིས་མེད།",
    "archive.timeline.heading": "དུས་ཐིག",
    "archive.timeline.empty": "དུས་ཐིག་ཐོག་དོན་རྐྱེན་མེད།",
    "archive.timeline.seek": "{time} ལ་མཆོང",
    "archive.event.join": "{name} ཞུགས་སོང",
    "archive.event.joinAtCourt": "{name} ཞུགས་སོང (ཁྲིམས་ཁང: {court})",
    "archive.event.leave": "{name} ཕྱིར་ཐོན་སོང",
    "archive.event.note": "ཁྲིམས་ཞིབ་ཟིན་ཐོ: {text}",
    "archive.event.gap": "བརྙན་ཟིན་མཚམས་བཞག་ ({reason})",
    "archive.event.recording-paused": "བརྙན་ཟིན་མཚམས་བཞག: {reason}",
    "archive.event.recording-resumed": "བརྙན་ཟིན་མུ་མཐུད",
    "archive.event.end": "བརྙན་ཟིན་མཇུག་རྫོགས",
    "archive.event.exhibit": "དཔང་རྟགས: {name} (སྟོན་མཁན: {by}, {role})",
    "archive.event.other": "{kind}",
    "archive.reason.recess": "ཁྲིམས་ཞིབ་བར་མཚམས",
    "archive.reason.non-public-evidence": "སྤྱི་ལ་མི་སྟོན་པའི་དཔང་རྟགས་ཞིབ་དཔྱད",
    "archive.reason.mediation": "བར་འདུམ",
    "archive.integrity.heading": "ཆ་ཚང་རང་བཞིན",
    "archive.integrity.unknown": "ད་དུང་ཞིབ་བཤེར་བྱས་མེད",
    "archive.integrity.ok": "ཞིབ་བཤེར་ཚད་ལོན",
    "archive.integrity.failed": "ཞིབ་བཤེར་ཚད་མ་ལོན",
    "archive.verify": "ད་ལྟ་ཞིབ་བཤེར",
    "archive.verify.working": "ཞིབ་བཤེར་བྱེད་བཞིན་པ…",
    "archive.verify.ok": "ཞིབ་བཤེར་ཚད་ལོན: དུམ་བུ་ {segments} ཡོད། མིང་རྟགས་དང་ཧ་ཤི་ལྕགས་སྒྲིལ་ཆ་ཚང་ཡོད།",
    "archive.verify.failed": "ཞིབ་བཤེར་ཚད་མ་ལོན: དཀའ་ངལ་ {count} ཡོད།",
    "archive.export": "དཔང་རྟགས་ཐུམ་སྒྲིལ་ཕྱིར་འདོན",
    "archive.files.heading": "ཡིག་ཆ",
    "archive.files.download": "ཕབ་ལེན",
    "archive.exhibit.hash": "SHA-256 ཧ་ཤི",
    "archive.exhibit.size": "{size} ཡིག་ཚིགས",
    "archive.exhibit.download": "དཔང་རྟགས་ཕབ་ལེན",
    "archive.error.unauthorized": "ལག་འཁྱེར་ནུས་མེད་ཡིན་པའམ་དུས་ཚོད་ཡོལ་ཟིན། ཡང་བསྐྱར་ནང་འཛུལ་གནང་རོགས།",
    "archive.error.forbidden": "ཁྱེད་ལ་བརྙན་ཟིན་འདི་ལྟ་བའི་དབང་ཚད་མེད། (ཐམ་ག་བརྒྱབ་ཟིན་པ་ཡིན་སྲིད།)",
    "archive.error.notFound": "བརྙན་ཟིན་དེ་རྙེད་མ་སོང་།",
    "archive.error.badQuery": "འཚོལ་བའི་ཆ་རྐྱེན་ནོར་འཁྲུལ: {message}",
    "archive.error.network": "ཞབས་ཞུ་ཆས་དང་འབྲེལ་མཐུད་བྱེད་ཐབས་མེད། དྲ་རྒྱ་ཞིབ་བཤེར་བྱས་ནས་ཡང་བསྐྱར་ཚོད་ལྟ་བྱེད་རོགས།",
    "archive.error.server": "ཞབས་ཞུ་ཆས་ཀྱིས་གནས་སྐབས་རེ་ཞུ་སྒྲུབ་མ་ཐུབ། ({status})",
  },
};

let currentLang = DEFAULT_LANG;
const listeners = new Set();

/** Languages that can be chosen: those with strings. */
export function availableLanguages() {
  return Object.keys(DICTIONARIES).filter((lang) => Object.keys(DICTIONARIES[lang]).length > 0);
}

/** Map a user-supplied tag ("en-US", "zh", "ZH-cn") onto an available language, or null. */
export function normalizeLanguage(tag) {
  if (typeof tag !== "string" || tag === "") return null;
  const available = availableLanguages();
  const lower = tag.toLowerCase();
  const exact = available.find((lang) => lang.toLowerCase() === lower);
  if (exact) return exact;
  const primary = lower.split("-")[0];
  return available.find((lang) => lang.toLowerCase().split("-")[0] === primary) ?? null;
}

function readStoredLanguage() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled (privacy mode, file://): fall through to the default
  }
}

function storeLanguage(lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembered; the choice still holds for this page
  }
}

export function getLanguage() {
  return currentLang;
}

/** Translate `key`, replacing `{name}` with `params.name`. */
export function t(key, params = {}) {
  const text = DICTIONARIES[currentLang]?.[key] ?? DICTIONARIES[DEFAULT_LANG][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/** Translate `key` if the dictionary has it, else return `fallback` (e.g. a role we have no name for). */
export function tOr(key, fallback) {
  const has = key in (DICTIONARIES[currentLang] ?? {}) || key in DICTIONARIES[DEFAULT_LANG];
  return has ? t(key) : fallback;
}

/** Fill `data-i18n` / `data-i18n-attr` elements under `root` (the whole document by default). */
export function applyTranslations(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/** Call `fn(lang)` after every language change. Returns an unsubscribe function. */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * Switch language: sets <html lang>, re-translates the document, remembers the choice, keeps `?lang=`
 * in the address in step (so a reload does not switch back), and tells listeners.
 */
export function setLanguage(tag, { remember = true } = {}) {
  const lang = normalizeLanguage(tag) ?? DEFAULT_LANG;
  currentLang = lang;
  document.documentElement.lang = lang;
  if (remember) storeLanguage(lang);
  const url = new URL(location.href);
  if (url.searchParams.has("lang") && url.searchParams.get("lang") !== lang) {
    url.searchParams.set("lang", lang);
    history.replaceState(history.state, "", url);
  }
  applyTranslations();
  for (const fn of listeners) fn(lang);
  return lang;
}

/** Pick the language at page start (URL, then remembered, then default) and apply it. */
export function initLanguage() {
  const fromUrl = normalizeLanguage(new URLSearchParams(location.search).get("lang"));
  if (fromUrl) return setLanguage(fromUrl, { remember: true });
  const remembered = normalizeLanguage(readStoredLanguage());
  return setLanguage(remembered ?? DEFAULT_LANG, { remember: false });
}

/** Turn a <select> into the language switch: one option per available language, in its own name. */
export function bindLanguageSelect(select) {
  select.replaceChildren();
  for (const lang of availableLanguages()) {
    const option = document.createElement("option");
    option.value = lang;
    option.lang = lang;
    option.textContent = DICTIONARIES[lang]["lang.name"] ?? lang;
    select.append(option);
  }
  select.value = currentLang;
  select.addEventListener("change", () => setLanguage(select.value));
  onLanguageChange((lang) => {
    select.value = lang;
  });
}
