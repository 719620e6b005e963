"""How much attribute information an LSI latent holds: a converged linear probe on L vs on E(I).

P_A in ``make table`` is trained by SGD with the other heads for a few hundred steps; this fits the same kind of
linear read-out to convergence (full-batch logistic regression on standardised latents,
:func:`lsi.experiments.pretrain.evaluate.linear_probe`) on training scenes and scores it on the test split, for the LSI
latent L = D_theta(O . I) and, as the reference, the inversion latent E(I).

    python -m lsi.experiments.probe runs/table/ratio512/lsi.ckpt [--train-identities 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm import tqdm

from datamodules import SyntheticFacesDataModule
from lsi.eval.floors import constant_predictor_metrics
from lsi.experiments.pretrain.evaluate import linear_probe
from lsi.models.imaging import load_lsi


@torch.no_grad()
def latents(encoder, loader, desc: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L [N, num_ws*w_dim], E(I) [N, num_ws*w_dim], attributes [N, A]) over ``loader``."""
    lsi, inv, attrs = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        lsi.append(encoder(batch["image"]).flatten(1))
        inv.append(encoder.target_latent(batch["image"]).flatten(1))
        attrs.append(batch["attributes"].float())
    return torch.cat(lsi), torch.cat(inv), torch.cat(attrs)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="an LSI checkpoint (lsi.ckpt)")
    p.add_argument("--train-identities", type=int, default=500, help="training people (4 photos each)")
    p.add_argument("--test-identities", type=int, default=100, help="test people (4 photos each, as make table)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    if not args.checkpoint.is_file():
        p.error(f"{args.checkpoint} does not exist; train one with `make train RATIO=512` or `make table`")
    encoder = load_lsi(str(args.checkpoint))
    dm = SyntheticFacesDataModule(batch_size=64, num_train_identities=args.train_identities, images_per_identity=4,
                                  num_val_identities=1, num_test_identities=args.test_identities)
    dm.setup("fit")
    dm.setup("test")
    tr_l, tr_e, tr_y = latents(encoder, dm.train_dataloader(), "train scenes")
    te_l, te_e, te_y = latents(encoder, dm.test_dataloader(), "test scenes")
    def probe(train_x: torch.Tensor, test_x: torch.Tensor) -> float:
        torch.manual_seed(0)  # the probe's initialisation: repeatable numbers
        return float(linear_probe(train_x, tr_y, test_x, te_y).mean())

    result = {
        "checkpoint": str(args.checkpoint), "train_scenes": len(tr_y), "test_scenes": len(te_y),
        "probe_acc_lsi_latent": probe(tr_l, te_l),
        "probe_acc_inversion_latent": probe(tr_e, te_e),
        "majority_acc": constant_predictor_metrics([{"attributes": tr_y}], [{"attributes": te_y}])["attr_acc"],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
