"""A stand-in for ``vllm serve MODEL --host H --port P ...`` in tests: the few OpenAI-compatible endpoints the opd
teachers use, answered by a local transformers model on CPU.

- ``GET /health``: 200 once the model is loaded;
- ``GET /v1/models``: the model's path as its id;
- ``POST /v1/completions`` with ``prompt`` (token id lists) and ``prompt_logprobs`` k: as vLLM, every prompt
  position but the first gets ``{token id: {logprob, rank, decoded_token}}`` for the top-k tokens and the prompt's
  own token, from the log-softmax of the logits at ``temperature``.

``--health-only`` answers the first two without loading a model. Other vLLM flags are accepted and ignored.
"""
import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def prompt_logprobs(model, ids: list[int], k: int, temperature: float) -> list:
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logps = torch.log_softmax(logits / temperature, dim=-1)
    out = [None]
    for position in range(1, len(ids)):
        dist = logps[position - 1]
        order = torch.argsort(dist, descending=True)
        ranks = {int(t): r + 1 for r, t in enumerate(order[:k].tolist())}
        token = ids[position]
        ranks.setdefault(token, int((dist > dist[token]).sum()) + 1)
        out.append({str(t): {"logprob": float(dist[t]), "rank": r, "decoded_token": ""} for t, r in ranks.items()})
    return out


def handler(model, model_id: str):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def reply(self, body: dict, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                self.reply({})
            elif self.path == "/v1/models":
                self.reply({"object": "list", "data": [{"id": model_id, "object": "model"}]})
            else:
                self.reply({"error": f"no route {self.path}"}, 404)

        def do_POST(self):
            if self.path != "/v1/completions" or model is None:
                self.reply({"error": f"no route {self.path}"}, 404)
                return
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                choices = [{"index": i, "text": "", "finish_reason": "length",
                            "prompt_logprobs": prompt_logprobs(model, ids, request["prompt_logprobs"],
                                                               request.get("temperature", 1.0))}
                           for i, ids in enumerate(request["prompt"])]
            self.reply({"id": "cmpl-fake", "object": "text_completion", "model": model_id, "choices": choices})

        def log_message(self, fmt, *args):
            print(f"[fake teacher] {fmt % args}", flush=True)

    return Handler


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--health-only", action="store_true")
    args, ignored = p.parse_known_args()
    print(f"[fake teacher] pid {os.getpid()} serving {args.model} on port {args.port} "
          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}; ignored {ignored}", flush=True)
    model = None
    if not args.health_only:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(1)
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype="float32").eval()
    ThreadingHTTPServer((args.host, args.port), handler(model, args.model)).serve_forever()


if __name__ == "__main__":
    main()
