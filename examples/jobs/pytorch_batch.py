"""A batch job for a studio's GPUs: score every item of a batch with a small PyTorch model, on the GPU it is
given, and write the scores to /job/output. Replace the model and the data with your own; the shape stays:
read from /job/input, write to /job/output, exit non-zero on failure."""

import json
import sys
import time

import torch


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device in this container: the job needs a GPU", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 16)).to(device)
    started = time.perf_counter()
    scores = []
    with torch.inference_mode():
        for batch in range(64):
            items = torch.randn(2048, 1024, device=device)
            scores.append(model(items).softmax(dim=1).max(dim=1).values.mean().item())
    torch.cuda.synchronize()
    result = {
        "device": torch.cuda.get_device_name(device),
        "batches": len(scores),
        "mean_score": sum(scores) / len(scores),
        "seconds": time.perf_counter() - started,
    }
    with open("/job/output/result.json", "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
