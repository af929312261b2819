// The dictionary used when a filter task brings no word list of its own.

/**
 * Mild placeholder terms for demonstrating masking in customer-service chat, English and Chinese.
 * Not a moderation list: deployments pass their own words in the task. `badword` must stay, tests rely
 * on it.
 */
export const DEFAULT_SENSITIVE_WORDS: readonly string[] = Object.freeze([
  'badword',
  'scam',
  'scammer',
  'idiot',
  'stupid',
  'moron',
  'loser',
  'shut up',
  '傻瓜',
  '笨蛋',
  '垃圾',
  '骗子',
  '白痴',
  '废物',
  '滚开',
]);
