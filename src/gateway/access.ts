/**
 * Who may read a conversation: its visitor and its assigned agent. A conversation of another
 * tenant does not exist for the caller (`not_found`); someone else's is `forbidden`.
 */
import { SwitchboardError } from '../protocol/errors.js';
import type { ConversationRecord, HistoryStore } from '../store/types.js';

export interface Reader {
  tenant: string;
  user: string;
  role: 'visitor' | 'agent';
}

export async function authorizeRead(
  store: Pick<HistoryStore, 'loadConversation'>,
  reader: Reader,
  conv: string,
): Promise<ConversationRecord> {
  const record = await store.loadConversation(reader.tenant, conv);
  if (!record) throw new SwitchboardError('not_found', `no conversation '${conv}'`);
  const allowed = reader.role === 'visitor' ? record.visitor === reader.user : record.agent === reader.user;
  if (!allowed) throw new SwitchboardError('forbidden', 'not a participant of this conversation');
  return record;
}
