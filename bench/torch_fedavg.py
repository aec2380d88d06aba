#!/usr/bin/env python3
"""torch_fedavg.py - the PyTorch FedAvg reference for `fedl simulate`.

Runs FedAvg with the setup of `make demo`

  fedl simulate --clients 10 --rounds 5 --model lenet5 \
      --data /usr/share/datasets/fashion-mnist --partition iid \
      --local-epochs 1 --batch 32 --lr 0.05 --seed 1

in PyTorch, as fedl simulate does it (cli/cmd_simulate.c):

- the model: fedl's preset built from the same layers (bench/torch_train.py:
  LeNet-5 = conv(6,5,pad 2) relu maxpool2 conv(16,5) relu maxpool2 flatten
  dense(120) relu dense(84) relu dense(10)), initialised as fedl does (He
  uniform before a ReLU, Glorot uniform otherwise, zero biases); inputs are
  pixels/255 (fedl's scale);
- the split (iid): one seeded shuffle of the 60,000 training samples dealt
  into near-equal consecutive parts, client c taking [n c / N, n (c+1) / N);
- every round all clients take the global weights and train --local-epochs
  with plain SGD (lr --lr, momentum 0, a fresh optimiser every round), batch
  --batch, mean cross-entropy, reshuffled every epoch with a generator seeded
  from (seed, round, client), the last short batch kept (fedl keeps it too);
- the global model becomes the sample-weighted mean of the clients' weights
  (FedAvg, server learning rate 1: the same as fedl's global + weighted mean
  of the deltas);
- after every round the global model is evaluated on the whole test set in
  batches of 256 (fedl simulate's evaluation batch).

The random streams (initial weights, split, shuffles) are PyTorch's, not
fedl's: the same --seed gives a different but equally distributed run.

Parallelism: torch.set_num_threads(1) and one BLAS/OpenMP thread (the
*_NUM_THREADS variables default to 1 here) everywhere. --workers 1 (default)
trains the clients one after the other in this process; --workers W > 1
forks W worker processes, one thread each, and client i of a round goes to
worker i mod W, as fedl simulate's pool of W threads deals them. Compare with
`fedl simulate --workers W`.

Prints a table row per round (train loss, test loss, test accuracy, seconds
since the start of the rounds) and one machine-readable line, e.g.

  torch_fedavg model=lenet5 clients=10 rounds=5 workers=1 seed=1
      load_s=0.9 rounds_s=41.2 peak_rss_mib=470.1 peak_rss_sum_mib=470.1
      pss_end_sum_mib=465.2 final_acc=0.8471 acc=0.7423,0.8011,0.8190,0.8344,0.8471 torch=1.13.0a0

(on one line). rounds_s is the rounds only (training, aggregation,
evaluation), after the data is loaded. peak_rss_mib is this process's
ru_maxrss; peak_rss_sum_mib adds each worker's own ru_maxrss (an upper
bound on the memory of the whole: pages shared after the fork, the training
set among them, are counted once per process); pss_end_sum_mib is the
sum of the processes' proportional set sizes (each shared page divided
among the processes mapping it) at the end of the run: what the whole
holds, though not its peak.

  /usr/bin/python3 bench/torch_fedavg.py --seed 1
  /usr/bin/python3 bench/torch_fedavg.py --workers 2 --rounds 5 --clients 10
"""
import os

# One BLAS thread before torch loads: torch.set_num_threads(1) does not reach
# the OpenBLAS that Debian's torch calls for its dense layers, which otherwise
# starts a thread per core (and sums in another order).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import multiprocessing as mp  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import build_model, init_like_fedl, load_split  # noqa: E402

EVAL_BATCH = 256  # fedl simulate evaluates in batches of 256


def pss_mib():
    """This process's proportional set size now (shared pages divided among
    the processes that map them), from /proc; 0 where there is none."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def one_thread():
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def iid_parts(n, clients, seed):
    """One seeded shuffle dealt into near-equal consecutive parts."""
    gen = torch.Generator()
    gen.manual_seed(seed + 0x9E3779B9)  # a stream apart from the shuffles' seeds
    order = torch.randperm(n, generator=gen)
    return [order[n * c // clients:n * (c + 1) // clients] for c in range(clients)]


class Local:
    """One worker's model and the clients' data (shared by every worker)."""

    def __init__(self, model_name, x, y, parts, args):
        self.model = build_model(model_name)
        self.model.train()
        self.x, self.y, self.parts, self.args = x, y, parts, args
        self.loss_fn = nn.CrossEntropyLoss()

    def train(self, weights, rnd, client):
        """Local training of client in round rnd (1-based) from weights; returns
        (new weights, samples seen, loss sum over the samples)."""
        a = self.args
        # a copy: vector_to_parameters makes the parameters views of the vector
        torch.nn.utils.vector_to_parameters(weights.clone(), self.model.parameters())
        opt = torch.optim.SGD(self.model.parameters(), lr=a.lr, momentum=0.0)
        idx_all = self.parts[client]
        n = idx_all.shape[0]
        gen = torch.Generator()
        gen.manual_seed(a.seed + (rnd - 1) * 1000003 + client)  # fedl's per-job seed
        seen, loss_sum = 0, 0.0
        for _ in range(a.local_epochs):
            order = idx_all[torch.randperm(n, generator=gen)]
            for i in range(0, n, a.batch):
                idx = order[i:i + a.batch]
                xb, yb = self.x[idx], self.y[idx]
                opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(self.model(xb), yb)
                loss.backward()
                opt.step()
                seen += idx.shape[0]
                loss_sum += loss.item() * idx.shape[0]
        return torch.nn.utils.parameters_to_vector(self.model.parameters()).detach().clone(), \
            seen, loss_sum


def worker_main(conn, model_name, x, y, parts, args):
    torch.set_num_threads(1)  # (the inter-op pool cannot be set again after the fork)
    local = Local(model_name, x, y, parts, args)
    while True:
        msg = conn.recv()
        if msg is None:
            conn.send((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, pss_mib()))
            conn.close()
            return
        weights, rnd, clients = msg  # numpy arrays through the pipe, plain pickles
        results = [local.train(torch.from_numpy(weights), rnd, c) for c in clients]
        conn.send([(w.numpy(), seen, loss_sum) for w, seen, loss_sum in results])


def evaluate(model, x, y):
    model.eval()
    correct, loss_sum = 0, 0.0
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            logits = model(x[i:i + EVAL_BATCH])
            loss_sum += loss_fn(logits, y[i:i + EVAL_BATCH]).item()
            correct += (logits.argmax(1) == y[i:i + EVAL_BATCH]).sum().item()
    model.train()
    return correct / x.shape[0], loss_sum / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5", choices=["lenet5", "mlp"])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--local-epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1,
                    help="training processes, one thread each (fedl simulate --workers)")
    ap.add_argument("--quiet", action="store_true", help="no table, the summary line only")
    args = ap.parse_args()
    if args.clients < 1 or args.rounds < 1 or args.workers < 1:
        ap.error("--clients, --rounds and --workers must be >= 1")

    one_thread()
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    x_train, y_train = load_split(args.data, "train", 0)
    x_test, y_test = load_split(args.data, "t10k", 0)
    parts = iid_parts(x_train.shape[0], args.clients, args.seed)
    load_s = time.perf_counter() - t0

    global_model = build_model(args.model)
    init_like_fedl(global_model, False)
    weights = torch.nn.utils.parameters_to_vector(global_model.parameters()).detach().clone()

    workers = min(args.workers, args.clients)
    local, pipes, procs = None, [], []
    if workers == 1:
        local = Local(args.model, x_train, y_train, parts, args)
    else:
        ctx = mp.get_context("fork")  # the children share the training set
        for _ in range(workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main,
                            args=(child, args.model, x_train, y_train, parts, args))
            p.start()
            child.close()
            pipes.append(parent)
            procs.append(p)

    if not args.quiet:
        print(f"torch_fedavg: {args.clients} clients (iid), fedavg, {args.rounds} rounds, "
              f"{weights.numel()} parameters, {workers} workers, seed {args.seed}")
        print("round  train-loss test-loss  test-acc    time s")
        sys.stdout.flush()
    accs = []
    start = time.perf_counter()
    for rnd in range(1, args.rounds + 1):
        if workers == 1:
            results = [local.train(weights, rnd, c) for c in range(args.clients)]
        else:
            for w, conn in enumerate(pipes):
                conn.send((weights.numpy(), rnd, list(range(w, args.clients, workers))))
            per_worker = [conn.recv() for conn in pipes]
            results = [None] * args.clients
            for w, res in enumerate(per_worker):
                for k, (new, seen, loss_sum) in enumerate(res):
                    results[w + k * workers] = (torch.from_numpy(new), seen, loss_sum)
        total = sum(r[1] for r in results)
        acc_sum = torch.zeros_like(weights, dtype=torch.float64)
        for new, seen, _ in results:  # in client order, in double, as fedl sums
            acc_sum += new.double() * seen
        weights = (acc_sum / total).float()
        train_loss = sum(r[2] for r in results) / total
        torch.nn.utils.vector_to_parameters(weights, global_model.parameters())
        acc, test_loss = evaluate(global_model, x_test, y_test)
        accs.append(acc)
        if not args.quiet:
            print(f"{rnd:5d}  {train_loss:10.4f} {test_loss:9.4f} {acc:9.4f} "
                  f"{time.perf_counter() - start:9.1f}")
            sys.stdout.flush()
    rounds_s = time.perf_counter() - start

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    rss_sum, pss_sum = rss, pss_mib()
    for conn in pipes:
        conn.send(None)
        w_rss, w_pss = conn.recv()
        rss_sum += w_rss
        pss_sum += w_pss
    for p in procs:
        p.join()
    print(f"torch_fedavg model={args.model} clients={args.clients} rounds={args.rounds} "
          f"workers={workers} seed={args.seed} load_s={load_s:.2f} rounds_s={rounds_s:.2f} "
          f"peak_rss_mib={rss:.1f} peak_rss_sum_mib={rss_sum:.1f} pss_end_sum_mib={pss_sum:.1f} "
          f"final_acc={accs[-1]:.4f} "
          f"acc={','.join(f'{a:.4f}' for a in accs)} torch={torch.__version__}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
