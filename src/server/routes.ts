/** Every endpoint the server answers, by dialect. */
import { anthropicMessages } from './anthropic.js';
import { chatCompletions } from './openai-chat.js';
import { completions } from './fim.js';
import type { Exchange, Route } from './http.js';
import { sendJson } from './respond.js';
import { responses } from './responses.js';

async function models(x: Exchange): Promise<void> {
  sendJson(x.res, 200, { object: 'list', data: x.server.registry.list().map((m) => ({ id: m.id, object: 'model', owned_by: m.ownedBy })) });
}

/** DeepSeek's account balance (§1): a local server bills nothing, so the account is always usable. */
async function balance(x: Exchange): Promise<void> {
  sendJson(x.res, 200, { is_available: true, balance_infos: [{ currency: 'CNY', total_balance: '0.00', granted_balance: '0.00', topped_up_balance: '0.00' }] });
}

async function health(x: Exchange): Promise<void> {
  sendJson(x.res, 200, { status: 'ok', models: x.server.registry.names() });
}

async function metrics(x: Exchange): Promise<void> {
  const text = x.server.metrics.render();
  x.res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text) });
  x.res.end(text);
}

/** The same path at the root, under /v1 and under /beta (the SDKs' base URLs). */
const everywhere = (p: string): string[] => [p, `/v1${p}`, `/beta${p}`, `/beta/v1${p}`];

export const ROUTES: readonly Route[] = [
  { method: 'POST', paths: everywhere('/chat/completions'), handler: chatCompletions },
  { method: 'POST', paths: everywhere('/completions'), handler: completions },
  { method: 'POST', paths: ['/responses', '/v1/responses'], handler: responses },
  // The Anthropic SDK's base URL is /anthropic (DeepSeek's) or the server root.
  { method: 'POST', paths: ['/anthropic/v1/messages', '/v1/messages'], handler: anthropicMessages, anthropic: true },
  { method: 'GET', paths: everywhere('/models'), handler: models },
  { method: 'GET', paths: ['/user/balance', '/v1/user/balance'], handler: balance },
  { method: 'GET', paths: ['/health'], handler: health, open: true },
  { method: 'GET', paths: ['/metrics'], handler: metrics, open: true },
];
