/** The widget's UI text in Chinese and English; `pickLang` chooses from an attribute or the browser. */
export const WIDGET_STRINGS = {
  en: {
    title: 'Chat with us',
    open: 'Open chat',
    close: 'Minimise',
    placeholder: 'Type a message…',
    send: 'Send',
    connecting: 'Connecting…',
    offline: 'Offline, reconnecting…',
    queue: (n: number) => `You are number ${n} in the queue`,
    assigned: (a: string) => `${a} is helping you`,
    typing: 'Agent is typing…',
    sending: 'Sending…',
    read: 'Read',
    blocked: 'Not sent: refused by the content policy',
    failed: 'Not sent',
    tooMany: 'Too many unsent messages; wait for the connection',
    closed: 'This conversation was closed.',
    rate: 'How did we do?',
    thanks: 'Thank you for your rating!',
    newChat: 'Start a new conversation',
    empty: 'Ask us anything: orders, delivery, returns.',
    endChat: 'End chat',
    recalled: 'Message recalled',
    edited: 'edited',
    name: 'Your name',
    email: 'Your e-mail',
    leaveMessage: 'Your message',
    leaveSend: 'Leave a message',
    leftThanks: 'Thank you! We will answer when we are back.',
    person: 'Talk to a person',
  },
  'zh-CN': {
    title: '在线客服',
    open: '打开客服',
    close: '最小化',
    placeholder: '请输入消息…',
    send: '发送',
    connecting: '正在连接…',
    offline: '已断开，正在重连…',
    queue: (n: number) => `您前面还有 ${n - 1} 位，当前排第 ${n} 位`,
    assigned: (a: string) => `客服 ${a} 正在为您服务`,
    typing: '客服正在输入…',
    sending: '发送中…',
    read: '已读',
    blocked: '未发送：内容不符合规定',
    failed: '未发送',
    tooMany: '未发送的消息过多，请等待连接恢复',
    closed: '本次会话已结束。',
    rate: '请为本次服务评分',
    thanks: '感谢您的评价！',
    newChat: '开始新的会话',
    empty: '有什么可以帮您？订单、物流、退换货都可以问。',
    endChat: '结束会话',
    recalled: '消息已撤回',
    edited: '已编辑',
    name: '您的姓名',
    email: '您的邮箱',
    leaveMessage: '留言内容',
    leaveSend: '提交留言',
    leftThanks: '感谢留言！我们上班后会尽快回复您。',
    person: '转人工客服',
  },
};

export type Lang = keyof typeof WIDGET_STRINGS;
export type WidgetStrings = (typeof WIDGET_STRINGS)['en'];

/** `zh*` → zh-CN, anything else → en. */
export function pickLang(attr: string | null | undefined): Lang {
  const l = (attr || navigator.language || 'en').toLowerCase();
  return l.startsWith('zh') ? 'zh-CN' : 'en';
}
