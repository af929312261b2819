// The image's HEALTHCHECK: exit 0 when this container's node answers GET /healthz with 200 within 2 s.
// /healthz means "the process serves HTTP"; readiness (lease held, shards owned) is /readyz.
const port = process.env.SB_PORT || '8080';
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
