"""Speed of the bi-layer engine beside the publisher's code and the paper's generator, and crop steadiness.

    PYTHONPATH=. python bench/bench_bilayer.py --reference /path/to/bilayer-model [--rounds 5]

One process, random weights (the publisher's networks built by its own code, converted by ours, as in
check_bilayer_reference.py), 2 CPU threads, fp32 unless said. Every variant is timed in each round, the
rounds interleaved, so a loaded machine slows all of them alike: read the RATIOS.
- per frame, batch 1 and 8: our folded per-frame path (the engine's), the same unfolded, the same in bf16;
  the publisher's per-frame networks alone (keypoints MLP + inference generator + texture warp, adaptive
  parameters already assigned) and its per-call path (its keypoints and inference-generator wrappers as its
  inference runs them per call: re-projecting the adaptive parameters and re-rendering the source pose);
  the `paper` preset generator as the few-shot engine runs it on the CPU.
- once per identity: ours (embed, texture, enhance) and the publisher's whole call with one target frame.
- crop steadiness on a still-head performance (the built-in performance's expression only, no head motion,
  plus 0.3 px of tracker noise): how far the crop moves and rescales from frame to frame under the
  publisher's per-frame rule and under ours (one crop from the portrait for the whole performance).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def median_ms(times, batch):
    return round(1000 * statistics.median(times) / batch, 1)


def min_ms(times, batch):
    """The fastest round: on a shared machine the one least disturbed by other processes."""
    return round(1000 * min(times) / batch, 1)


def crop_steadiness(seed: int = 0, figure: str | None = None) -> dict:
    from livingportrait_backend.landmarks.performance import builtin_performance
    from livingportrait_backend.landmarks.retarget import RetargetOptions, retarget
    from livingportrait_backend.model.bilayer import inputs as bi

    perf = builtin_performance()
    portrait_points = perf.landmarks[0].astype(np.float64)
    still = retarget(portrait_points, perf, RetargetOptions(regions=("expression",)))
    still = still + np.random.default_rng(seed).normal(0, 0.3, still.shape)
    boxes = [bi.crop_box(p) for p in still]
    centre = np.array([[b.cx, b.cy] for b in boxes], np.float64)
    side = np.array([b.side for b in boxes], np.float64)
    moves = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    scale = np.abs(np.diff(side)) / side[:-1]
    ours = bi.crop_box(portrait_points)
    if figure:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3), dpi=100)
        frames = np.arange(1, len(still) + 1)
        axes[0].plot(frames, centre[:, 1] - centre[0, 1], label="publisher: re-centred per frame")
        axes[0].plot(frames, np.zeros(len(frames)), label="ours: one crop for the performance")
        axes[0].set(title="crop centre, vertical (px)", xlabel="frame")
        axes[1].plot(frames, 100 * (side / side[0] - 1))
        axes[1].plot(frames, np.zeros(len(frames)))
        axes[1].set(title="crop size change (%)", xlabel="frame")
        axes[0].legend(fontsize=8)
        fig.suptitle("still head, talking and blinking (built-in performance, expression only, 0.3 px noise)",
                     fontsize=9)
        fig.tight_layout()
        fig.savefig(figure)
    return {"frames": len(still), "publisher_centre_step_px_mean": round(float(moves.mean()), 2),
            "publisher_centre_step_px_max": round(float(moves.max()), 2),
            "publisher_scale_step_percent_mean": round(100 * float(scale.mean()), 2),
            "publisher_scale_step_percent_max": round(100 * float(scale.max()), 2),
            "publisher_frames_with_a_moved_crop": int(np.sum((moves > 0) | (scale > 0))),
            "crop_side_px": int(ours.side), "ours_centre_step_px_max": 0.0, "ours_scale_step_percent_max": 0.0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--plot", help="draw the crop steadiness into this PNG")
    opts = ap.parse_args()
    torch.set_num_threads(2)
    ref = Path(opts.reference).resolve()
    sys.path.insert(0, str(ref))
    import tempfile
    import warnings

    import check_bilayer_reference as check
    from bench_model import _generator

    from livingportrait_backend.model.bilayer import convert_runs, load_converted

    warnings.filterwarnings("ignore")
    check.install_stand_ins([], check.fixed_mask(256))
    from runners import utils as rn_utils
    from runners.default import RunnerWrapper

    torch.manual_seed(0)
    args = check.reference_args(ref)
    runner = RunnerWrapper(args, training=False)
    check.randomise(runner, torch.Generator().manual_seed(0))
    runner.eval()
    with tempfile.TemporaryDirectory() as tmp:
        runs = check.write_runs(runner, args, Path(tmp))
        convert_runs([str(r) for r in runs], str(Path(tmp) / "out"))
        ours = load_converted(str(Path(tmp) / "out"))
    runner.apply(rn_utils.remove_spectral_norm)
    nets = runner.nets
    S = 256
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, S, S, generator=g) * 2 - 1
    mask = check.fixed_mask(S)
    stick = torch.rand(1, 3, S, S, generator=g) * 2 - 1
    kp0 = torch.rand(1, 136, generator=g) * 1.6 - 0.8

    def ours_identity():
        return ours.identity(image, mask, stick, kp0)

    def ref_call(targets):
        d = {"source_imgs": image[:, None], "source_segs": mask[:, None], "source_stickmen": stick[:, None],
             "source_poses": kp0[:, None], "target_poses": targets[None]}
        with torch.no_grad():
            runner(d)
        return d

    ident = ours_identity()
    folded = ours.frame_path(ident.texture)
    folded_bf16 = ours.frame_path(ident.texture, torch.bfloat16)
    base = ref_call(kp0)
    # The publisher's per-frame networks with the adaptive parameters already assigned (by the call above).
    gen_inf, identity_grid = nets["inference_generator"].gen_inf, nets["inference_generator"].identity_grid
    tex_ref = base["pred_enh_tex_hf_rgbs"][:, 0]
    paper, psi = _generator("cpu", "all", True)

    def ref_networks(k):
        pose = nets["keypoints_embedder"].net(k)
        uv_delta, lf, seg = gen_inf(pose)
        uv = identity_grid + uv_delta.permute(0, 2, 3, 1)
        return lf + torch.nn.functional.grid_sample(tex_ref.expand(k.shape[0], -1, -1, -1), uv), torch.sigmoid(seg)

    def ref_wrappers(k):
        d = {"source_idt_embeds": base["source_idt_embeds"], "pred_tex_hf_rgbs": base["pred_tex_hf_rgbs"],
             "source_poses": kp0[:, None], "target_poses": k[None]}
        nets["keypoints_embedder"](d, [], nets)
        nets["inference_generator"](d, [], nets)
        return d

    results: dict = {"threads": torch.get_num_threads(), "rounds": opts.rounds}
    times: dict = {}
    for batch in (1, 8):
        k = torch.rand(batch, 136, generator=g) * 1.6 - 0.8
        raster = (torch.rand(batch, 3, S, S, generator=g) * 2 - 1).contiguous(memory_format=torch.channels_last)
        variants = {
            "ours_folded_fp32": lambda: folded(k),
            "ours_unfolded_fp32": lambda: ours.frames(k, ident.texture),
            "ours_folded_bf16": lambda: folded_bf16(k),
            "publisher_per_frame_networks": lambda: ref_networks(k),
            "publisher_per_call_path": lambda: ref_wrappers(k),
            "paper_generator_folded": lambda: paper(raster, psi),
        }
        with torch.inference_mode():
            for fn in variants.values():
                fn()  # warm-up
            for _ in range(opts.rounds):
                for name, fn in variants.items():
                    t = time.perf_counter()
                    fn()
                    times.setdefault((name, batch), []).append(time.perf_counter() - t)
        for name in variants:
            results[f"{name}_batch{batch}_ms_per_frame_min"] = min_ms(times[(name, batch)], batch)
            results[f"{name}_batch{batch}_ms_per_frame_median"] = median_ms(times[(name, batch)], batch)
    ident_times, call_times = [], []
    for _ in range(max(2, opts.rounds // 2)):
        t = time.perf_counter()
        ours_identity()
        ident_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        ref_call(kp0)
        call_times.append(time.perf_counter() - t)
    results["ours_once_per_identity_s_min"] = round(min(ident_times), 2)
    results["publisher_whole_call_one_frame_s_min"] = round(min(call_times), 2)
    results["crop_steadiness"] = crop_steadiness(figure=opts.plot)
    print(json.dumps(results, indent=1))
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
