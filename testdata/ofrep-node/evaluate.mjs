// evaluate.mjs BASE_URL USERS — the real OpenFeature server SDK with the
// OFREP provider, evaluating against a cellgate node (flag_sdk_test.go).
// Prints one JSON line per evaluation: the SDK's own evaluation details.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const [baseUrl, users] = process.argv.slice(2);
await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl }));
const client = OpenFeature.getClient();
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
for (let i = 0; i < Number(users); i++) {
  const ctx = { targetingKey: `user-${i}`, plan: 'pro' };
  const b = await client.getBooleanDetails('new-ranker', false, ctx);
  const s = await client.getStringDetails('checkout', 'none', ctx);
  out({ user: ctx.targetingKey, flag: b.flagKey, value: b.value, variant: b.variant, reason: b.reason, errorCode: b.errorCode });
  out({ user: ctx.targetingKey, flag: s.flagKey, value: s.value, variant: s.variant, reason: s.reason, errorCode: s.errorCode });
}
const missing = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'user-0' });
out({ user: 'user-0', flag: missing.flagKey, value: missing.value, reason: missing.reason, errorCode: missing.errorCode });
const nokey = await client.getBooleanDetails('new-ranker', true, {});
out({ user: '', flag: nokey.flagKey, value: nokey.value, reason: nokey.reason, errorCode: nokey.errorCode });
await OpenFeature.close();
