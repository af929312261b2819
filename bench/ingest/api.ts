/**
 * The HTTP API calls the ingest scenario makes, in one place (shapes from docs/openapi.yaml): create a
 * conversation for a known customer, post a bot message into it, read its history back. Every call
 * carries a tenant API key.
 */

export interface ApiTenant {
  tenant: string;
  /** The API key in clear (the node's tenants file holds its sha256). */
  apiKey: string;
}

export const BOT_SENDER = 'bench-bot';

export function authHeaders(t: ApiTenant): Record<string, string> {
  return { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' };
}

export function messagesPath(conv: string): string {
  return `/api/v1/conversations/${encodeURIComponent(conv)}/messages`;
}

/** The body of a bot message; the delivery-latency probe reads `@<sentAtMs>` back out of the text. */
export function messageBody(cmid: string, text: string): string {
  return JSON.stringify({ from: BOT_SENDER, role: 'bot', cmid, body: text });
}

async function expectOk(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return text === '' ? {} : (JSON.parse(text) as unknown);
}

export async function createConversation(
  base: string,
  t: ApiTenant,
  conv: string,
  visitor: string,
): Promise<void> {
  const res = await fetch(`${base}/api/v1/conversations`, {
    method: 'POST',
    headers: authHeaders(t),
    body: JSON.stringify({ conv, visitor }),
  });
  await expectOk(res, `create conversation ${conv}`);
}

/** How many bot messages the conversation's history holds (pages back from the newest). */
export async function countBotMessages(base: string, t: ApiTenant, conv: string): Promise<number> {
  let count = 0;
  let before: number | undefined;
  for (;;) {
    const q = before === undefined ? '?limit=500' : `?limit=500&before=${before}`;
    const res = await fetch(`${base}${messagesPath(conv)}${q}`, { headers: authHeaders(t) });
    const page = (await expectOk(res, `history of ${conv}`)) as {
      items: { seq: number; from: string }[];
      next?: number | null;
    };
    for (const m of page.items) if (m.from === BOT_SENDER) count++;
    if (page.next === undefined || page.next === null) return count;
    before = page.next;
  }
}
