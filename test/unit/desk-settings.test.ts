/**
 * The tenants file's `desk` section (src/desk/settings.ts): defaults, a tenant's values merged over
 * them, and each bound refused one past its limit with the path in the message.
 */
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUILTIN_DESK_SETTINGS,
  MAX_CANNED_PER_AGENT,
  MAX_CANNED_PER_TENANT,
  MAX_EDIT_CHARS,
  MAX_EDITS_PER_MESSAGE,
  MAX_LABEL_CHARS,
  MAX_LABELS_PER_CONVERSATION,
  MAX_RECALL_WINDOW_S,
  MIN_RECALL_WINDOW_S,
} from '../../src/desk/settings.js';
import { parseTenantsYaml, TenantsConfigError } from '../../src/tenants.js';

const file = (desk: string) => `version: 1\ntenants:\n  acme:\n    desk: { ${desk} }\n`;

test('desk settings - the bounds are accepted at their limits and refused one past', () => {
  const cases: [string, number, number][] = [
    ['recallWindowS', MIN_RECALL_WINDOW_S, MAX_RECALL_WINDOW_S],
    ['maxCannedPerTenant', 1, MAX_CANNED_PER_TENANT],
    ['maxCannedPerAgent', 1, MAX_CANNED_PER_AGENT],
    ['maxLabelsPerConversation', 1, MAX_LABELS_PER_CONVERSATION],
    ['maxLabelChars', 1, MAX_LABEL_CHARS],
    ['maxEditChars', 1, MAX_EDIT_CHARS],
    ['maxEditsPerMessage', 1, MAX_EDITS_PER_MESSAGE],
  ];
  for (const [key, min, max] of cases) {
    for (const ok of [min, max]) parseTenantsYaml(file(`${key}: ${ok}`));
    for (const bad of [min - 1, max + 1, 1.5]) {
      assert.throws(
        () => parseTenantsYaml(file(`${key}: ${bad}`)),
        (err: unknown) =>
          err instanceof TenantsConfigError && err.message.includes(`tenants.acme.desk.${key}`),
        `${key}: ${bad} is refused`,
      );
    }
  }
  assert.throws(() => parseTenantsYaml(file('recallWindow: 5')), TenantsConfigError);
});

test('desk settings - every built-in default is inside its bounds', () => {
  for (const [key, value] of Object.entries(BUILTIN_DESK_SETTINGS))
    parseTenantsYaml(file(`${key}: ${value}`));
});
