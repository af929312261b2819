import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyPolicy,
  compilePolicy,
  MAX_CACHED_POLICIES,
  PolicyCache,
  type PolicySet,
  validatePolicy,
} from '../../workers/content-policy.js';
import runTextTask from '../../workers/text-worker.js';

const policy: PolicySet = {
  version: 'v1',
  rules: [
    { words: ['idiot', '傻瓜'], action: 'mask' },
    { words: ['refund scam', '诈骗'], action: 'block' },
    { words: ['lawyer', '投诉'], action: 'review' },
  ],
};
const compiled = compilePolicy(policy);
const apply = (text: string) => applyPolicy(compiled, text);

test('policy - mask hides the word and lets the message through', () => {
  assert.deepEqual(apply('you idiot!'), {
    text: 'you *****!',
    blocked: false,
    review: false,
    hits: [{ word: 'idiot', action: 'mask' }],
  });
});

test('policy - block refuses the message and reports the word without masking it', () => {
  assert.deepEqual(apply('this is a refund scam'), {
    text: 'this is a refund scam',
    blocked: true,
    review: false,
    hits: [{ word: 'refund scam', action: 'block' }],
  });
  assert.equal(apply('你们是诈骗吧').blocked, true);
});

test('policy - review delivers the text unchanged and flags it', () => {
  assert.deepEqual(apply('我要投诉你们'), {
    text: '我要投诉你们',
    blocked: false,
    review: true,
    hits: [{ word: '投诉', action: 'review' }],
  });
});

test('policy - several actions in one text, hits in order of first occurrence', () => {
  const result = apply('My lawyer says you idiot 傻瓜 run a refund scam');
  assert.equal(result.text, 'My lawyer says you ***** ** run a refund scam');
  assert.equal(result.blocked, true);
  assert.equal(result.review, true);
  assert.deepEqual(result.hits, [
    { word: 'lawyer', action: 'review' },
    { word: 'idiot', action: 'mask' },
    { word: '傻瓜', action: 'mask' },
    { word: 'refund scam', action: 'block' },
  ]);
});

test('policy - a word under two actions gets both', () => {
  const both = compilePolicy({
    version: 'x',
    rules: [
      { words: ['spam'], action: 'mask' },
      { words: ['SPAM'], action: 'review' },
    ],
  });
  assert.deepEqual(applyPolicy(both, 'no spam'), {
    text: 'no ****',
    blocked: false,
    review: true,
    hits: [
      { word: 'spam', action: 'mask' },
      { word: 'spam', action: 'review' },
    ],
  });
});

test('policy - evasions: case, full-width, separators, zero-width and Chinese punctuation', () => {
  assert.equal(apply('IDIOT').text, '*****');
  assert.equal(apply('ｉｄｉｏｔ').text, '*****');
  assert.equal(apply('i.d.i.o.t').text, '*********');
  assert.equal(apply('i d-i_o t').text, '*********');
  assert.equal(apply('id\u200Biot').text, '******');
  assert.equal(apply('你个傻，瓜').text, '你个***');
  assert.equal(apply('R E F U N D  S C A M').blocked, true);
  assert.equal(apply('诈 骗').blocked, true);
  assert.equal(apply('投-诉').review, true);
});

test('policy - clean text is returned as the same string with no flags', () => {
  const text = 'Where is my parcel? 我的快递到哪了';
  const result = apply(text);
  assert.equal(result.text, text);
  assert.deepEqual(result, { text, blocked: false, review: false, hits: [] });
  assert.deepEqual(applyPolicy(compilePolicy({ version: 'empty', rules: [] }), 'idiot').hits, []);
});

test('policy - invalid policies are refused with a message naming the field', () => {
  const cases: Array<[unknown, RegExp]> = [
    [null, /policy must be an object/],
    [{ rules: [] }, /version must be a string/],
    [{ version: '', rules: [] }, /version must be a string/],
    [{ version: 'v', rules: {} }, /rules must be an array/],
    [{ version: 'v', rules: [null] }, /rule must be an object/],
    [
      { version: 'v', rules: [{ words: ['a'], action: 'delete' }] },
      /action must be one of mask, block, review/,
    ],
    [{ version: 'v', rules: [{ words: 'a', action: 'mask' }] }, /words must be an array of strings/],
    [{ version: 'v', rules: [{ words: [1], action: 'mask' }] }, /words must be an array of strings/],
    [{ version: 'v', rules: [{ words: ['x'.repeat(65)], action: 'mask' }] }, /at most 64 characters/],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => validatePolicy(value), message, JSON.stringify(value));
  }
});

test('policy cache - hot reload: a new version recompiles, the same version is served from cache', () => {
  const cache = new PolicyCache();
  const v1: PolicySet = { version: '1', rules: [{ words: ['alpha'], action: 'mask' }] };
  const v2: PolicySet = { version: '2', rules: [{ words: ['beta'], action: 'block' }] };
  assert.equal(applyPolicy(cache.get('t1', v1), 'alpha beta').text, '***** beta');
  assert.equal(cache.compiles, 1);
  assert.equal(applyPolicy(cache.get('t1', v1), 'alpha').text, '*****');
  assert.equal(cache.compiles, 1, 'same version is not recompiled');
  const reloaded = applyPolicy(cache.get('t1', v2), 'alpha beta');
  assert.deepEqual(reloaded, {
    text: 'alpha beta',
    blocked: true,
    review: false,
    hits: [{ word: 'beta', action: 'block' }],
  });
  assert.equal(cache.compiles, 2);
  assert.equal(cache.size, 1, 'one entry per tenant, whatever the versions seen');
});

test('policy cache - tenants are isolated', () => {
  const cache = new PolicyCache();
  cache.get('a', { version: '1', rules: [{ words: ['alpha'], action: 'mask' }] });
  const b = cache.get('b', { version: '1', rules: [{ words: ['beta'], action: 'mask' }] });
  assert.equal(applyPolicy(b, 'alpha beta').text, 'alpha ****');
});

test('policy cache - holds at most 32 tenants and evicts the least recently used', () => {
  const cache = new PolicyCache();
  const policyOf = (n: number): PolicySet => ({
    version: 'v',
    rules: [{ words: [`w${n}`], action: 'mask' }],
  });
  for (let n = 0; n < MAX_CACHED_POLICIES; n++) cache.get(`t${n}`, policyOf(n));
  cache.get('t0', policyOf(0)); // t0 is now the most recently used, t1 the least
  assert.equal(cache.compiles, MAX_CACHED_POLICIES);
  cache.get('t-new', policyOf(99));
  assert.equal(cache.size, MAX_CACHED_POLICIES);
  cache.get('t0', policyOf(0));
  assert.equal(cache.compiles, MAX_CACHED_POLICIES + 1, 't0 was kept');
  cache.get('t1', policyOf(1));
  assert.equal(cache.compiles, MAX_CACHED_POLICIES + 2, 't1 was evicted and is compiled again');
  assert.equal(cache.size, MAX_CACHED_POLICIES);
});

test('policy cache - a budget of trie nodes bounds memory, never evicting the policy in use', () => {
  const big = (n: number): PolicySet => ({
    version: 'v',
    rules: [{ words: Array.from({ length: 100 }, (_, i) => `word-${n}-${i}`), action: 'mask' }],
  });
  const nodesPerPolicy = compilePolicy(big(0)).nodes;
  const cache = new PolicyCache(MAX_CACHED_POLICIES, nodesPerPolicy * 2);
  for (let n = 0; n < 5; n++) cache.get(`t${n}`, big(n));
  assert.equal(cache.size, 2);
  const tiny = new PolicyCache(MAX_CACHED_POLICIES, 1);
  assert.equal(applyPolicy(tiny.get('t', big(7)), 'word-7-3').text, '********');
  assert.equal(tiny.size, 1);
});

test('text worker - policy op checks texts of one tenant and reloads on a new version', () => {
  const run = (version: string, words: string[], texts: string[]) =>
    runTextTask({
      op: 'policy',
      tenant: 'acme',
      policy: { version, rules: [{ words, action: 'mask' }] },
      texts,
    });
  assert.deepEqual(
    run('1', ['gamma'], ['gamma ray', 'clean']).results.map((r) => r.text),
    ['***** ray', 'clean'],
  );
  assert.deepEqual(run('2', ['ray'], ['gamma ray']).results[0]?.text, 'gamma ***');
  assert.throws(
    () => runTextTask({ op: 'policy', tenant: '', policy, texts: [] }),
    /tenant must be a non-empty string/,
  );
  const bad = { op: 'policy', tenant: 'acme', policy: { version: '3', rules: 'x' }, texts: [] } as never;
  assert.throws(() => runTextTask(bad), /tenant "acme": policy rules must be an array/);
});
