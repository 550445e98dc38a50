#!/usr/bin/env node
// A Node.js client of the cadence gRPC service (cadence.v1.InferenceService), with stubs
// built at run time from protos/ by @grpc/proto-loader.
//
//   npm install && node client.js [--address 127.0.0.1:50051] [--api-key KEY]
//                                 [--prompt TEXT] [--max-tokens N]
//
// Streams a greedy Generate (printing each delta as it arrives), then runs a Chat, and
// prints one JSON line: {"model", "generate": {"text", "token_ids", "finish_reason",
// "usage"}, "chat": {...}} so a test can compare it with the server's offline results.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = process.env.CADENCE_PROTO_ROOT || path.join(__dirname, '..', '..', '..', 'protos');

function parseArgs(argv) {
  const args = {address: '127.0.0.1:50051', apiKey: process.env.CADENCE_API_KEY || '',
                prompt: 'The capital of France is', maxTokens: 16};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--address') args.address = value;
    else if (flag === '--api-key') args.apiKey = value;
    else if (flag === '--prompt') args.prompt = value;
    else if (flag === '--max-tokens') args.maxTokens = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

function loadService() {
  const definition = protoLoader.loadSync('cadence/v1/inference.proto', {
    includeDirs: [PROTO_ROOT],
    keepCase: true,  // field names as in the .proto (snake_case)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).cadence.v1.InferenceService;
}

function metadataFor(apiKey) {
  const metadata = new grpc.Metadata();
  if (apiKey) metadata.set('authorization', `Bearer ${apiKey}`);
  return metadata;
}

// Runs a server-streaming call and folds its responses into one result per choice 0.
function collect(call, onDelta) {
  return new Promise((resolve, reject) => {
    const result = {text: '', token_ids: [], finish_reason: 'FINISH_REASON_UNSPECIFIED', usage: null};
    call.on('data', (response) => {
      for (const choice of response.choices) {
        if (choice.index !== 0) continue;
        result.text += choice.text;
        result.token_ids.push(...choice.token_ids);
        if (choice.finish_reason !== 'FINISH_REASON_UNSPECIFIED') result.finish_reason = choice.finish_reason;
        if (onDelta && choice.text) onDelta(choice.text);
      }
      if (response.usage) result.usage = response.usage;
    });
    call.on('error', reject);
    call.on('end', () => resolve(result));
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const Service = loadService();
  const client = new Service(args.address, grpc.credentials.createInsecure());
  const metadata = metadataFor(args.apiKey);
  const deadline = () => new Date(Date.now() + 120000);

  const info = await new Promise((resolve, reject) =>
    client.GetModelInfo({}, metadata, {deadline: deadline()},
                        (err, response) => (err ? reject(err) : resolve(response))));

  const sampling = {temperature: 0, max_tokens: args.maxTokens};
  const generate = await collect(
    client.Generate({text: args.prompt, sampling, stream: true}, metadata, {deadline: deadline()}),
    (delta) => process.stderr.write(delta));
  process.stderr.write('\n');

  const chat = await collect(client.Chat({
    messages: [{role: 'user', content: 'What is the capital of France?'}],
    sampling,
    stream: false,
  }, metadata, {deadline: deadline()}));

  console.log(JSON.stringify({model: info.name, generate, chat}));
  client.close();
}

main().catch((err) => {
  console.error(`error: ${err.code !== undefined ? `gRPC status ${err.code}: ` : ''}${err.details || err.message}`);
  process.exit(1);
});
