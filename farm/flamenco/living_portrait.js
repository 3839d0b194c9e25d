// SPDX-License-Identifier: GPL-3.0-or-later
//
// Living Portrait as a Flamenco job type. Copy this file into the Manager's `scripts/` folder (next to
// flamenco-manager); it appears as the job type "living-portrait". Each task renders one chunk of frames
// with `livingportrait render --frames LIST`: chunks are idempotent per frame, so a task Flamenco retries
// on another worker renders only what is missing and writes the same bytes.
//
// Manager set-up (flamenco-manager.yaml), see docs/farm.md:
//   variables:
//     livingportrait:
//       values:
//         - platform: linux
//           value: /opt/livingportrait/venv/bin/livingportrait
//         - platform: windows
//           value: C:\livingportrait\venv\Scripts\livingportrait.exe
// Worker set-up (flamenco-worker.yaml): add "livingportrait" to task_types, on the workers that have it.
//
// The settings with `eval` are filled by the Flamenco Blender add-on from the scene's Living Portrait
// panel when the job is submitted from Blender; they stay editable. Paths must be readable by workers.

const JOB_TYPE = {
    label: "Living Portrait",
    description: "Animate a portrait with a landmark performance into a scene-linear EXR sequence.",
    settings: [
        { key: "portrait", type: "string", subtype: "file_path", required: true,
          description: "The portrait image to animate (PNG, JPEG, TIFF or EXR)",
          eval: "bpy.path.abspath(C.scene.living_portrait.portraits[0].image.filepath)",
          evalInfo: { showLinkButton: true, description: "The first portrait of the Living Portrait panel" } },
        { key: "driver", type: "string", subtype: "file_path", required: true,
          description: "The performance: a landmark sequence (.npz; the add-on's Export Farm Job writes one) or a video",
          eval: "bpy.path.abspath(C.scene.living_portrait.performance_file)",
          evalInfo: { showLinkButton: true, description: "The panel's performance file" } },
        { key: "portrait_landmarks", type: "string", subtype: "file_path", required: false, default: "",
          description: "Optional: the portrait's own 68 landmarks (.npz or .npy); empty to detect them once per job" },
        { key: "output_dir", type: "string", subtype: "dir_path", required: true,
          description: "The folder the NAME.####.exr frames are written into",
          eval: "bpy.path.abspath(C.scene.living_portrait.output_dir)",
          evalInfo: { showLinkButton: true, description: "The panel's output folder" } },
        { key: "name", type: "string", required: true, default: "portrait",
          description: "Sequence name: frames are NAME.####.exr",
          eval: "C.scene.living_portrait.sequence_name" },
        { key: "frames", type: "string", required: true,
          description: "Frames to render, e.g. 1-48 or 1-10,20-30",
          eval: "f'{C.scene.frame_start}-{C.scene.frame_end}'",
          evalInfo: { showLinkButton: true, description: "The scene's frame range" } },
        { key: "chunk_size", type: "int32", default: 8, propargs: { min: 1, max: 1000 },
          description: "Frames per task; each task pays the start-up once" },
        { key: "mode", type: "string", required: true, default: "relative", choices: ["relative", "absolute"],
          description: "relative transfers the performer's motion; absolute their face shape too",
          eval: "C.scene.living_portrait.motion_mode" },
        { key: "expression_scale", type: "float", default: 1.0, propargs: { min: 0, max: 10 },
          description: "Multiplies the expression motion (1 = as performed)",
          eval: "C.scene.living_portrait.expression_scale" },
        { key: "regions", type: "string", required: true, default: "pose,expression",
          description: "What transfers: comma list of pose, expression, eyes, brows, mouth, jaw",
          eval: "','.join(r for r in ('pose', 'expression', 'eyes', 'brows', 'mouth', 'jaw') if r in C.scene.living_portrait.regions)" },
        { key: "driver_smoothing", type: "string", required: false, default: "",
          description: "Optional: smooth the performance first (a strength, 1 = default, or off)" },
        { key: "engine", type: "string", required: true, default: "warp",
          choices: ["warp", "fewshot", "bilayer"],
          description: "Synthesis engine; fewshot needs a checkpoint",
          eval: "C.scene.living_portrait.engine" },
        { key: "checkpoint", type: "string", subtype: "dir_path", required: false, default: "",
          description: "fewshot engine: the checkpoint folder (holds model.safetensors) as workers see it",
          eval: "bpy.path.abspath(C.scene.living_portrait.checkpoint)" },
        { key: "finetune_steps", type: "int32", default: 0, propargs: { min: 0 },
          description: "fewshot engine: fine-tune steps on the portrait (done once per job, then cached)",
          eval: "C.scene.living_portrait.finetune_steps" },
    ],
};

function compileJob(job) {
    const settings = job.settings;
    const common = [
        "render",
        "--portrait", settings.portrait,
        "--driver", settings.driver,
        "--out", settings.output_dir,
        "--name", settings.name,
        "--mode", settings.mode,
        "--expression-scale", String(settings.expression_scale),
        "--regions", settings.regions,
        "--engine", settings.engine,
    ];
    // Optional settings: left out when empty, so the job is the one a plain command line renders.
    if (settings.portrait_landmarks) {
        common.push("--portrait-landmarks", settings.portrait_landmarks);
    }
    if (settings.driver_smoothing) {
        common.push("--driver-smoothing", settings.driver_smoothing);
    }
    if (settings.checkpoint) {
        common.push("--checkpoint", settings.checkpoint);
    }
    if (settings.finetune_steps) {
        common.push("--finetune-steps", String(settings.finetune_steps));
    }
    for (const chunk of frameChunker(settings.frames, settings.chunk_size)) {
        const task = author.Task(`render-${chunk}`, "livingportrait");
        task.addCommand(author.Command("exec", {
            exe: "{livingportrait}",
            args: common.concat(["--frames", chunk]),
        }));
        job.addTask(task);
    }
}
