// A Responses API stream through the openai Node SDK; prints the event types and the final text.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.GATEWAY_URL, apiKey: process.env.GATEWAY_KEY ?? "unused", maxRetries: 0 });
const stream = await client.responses.create({ model: "gpt-5-low", input: "Say something", stream: true });
const types = [];
let text = "";
let model = null;
for await (const event of stream) {
  types.push(event.type);
  if (event.type === "response.output_text.delta") text += event.delta;
  if (event.type === "response.completed") model = event.response.model;
}
console.log(JSON.stringify({ types, text, model }));
