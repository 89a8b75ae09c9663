// Streaming chat completion with a tool call through the openai Node SDK; prints what it assembled.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GATEWAY_URL, apiKey: process.env.GATEWAY_KEY ?? "unused", maxRetries: 0 });
const stream = await client.chat.completions.create({
  model: "gpt-5",
  messages: [{ role: "user", content: "What is the weather in Paris?" }],
  tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
  stream: true,
  stream_options: { include_usage: true },
});
const calls = {};
const finishReasons = [];
let usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const choice of chunk.choices) {
    if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    for (const call of choice.delta.tool_calls ?? []) {
      const entry = (calls[call.index] ??= { id: "", name: "", arguments: "" });
      if (call.id) entry.id = call.id;
      if (call.function?.name) entry.name += call.function.name;
      if (call.function?.arguments) entry.arguments += call.function.arguments;
    }
  }
}
console.log(JSON.stringify({ calls, finishReasons, usage }));
