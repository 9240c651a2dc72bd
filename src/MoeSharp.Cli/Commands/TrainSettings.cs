using System.ComponentModel;
using MoeSharp.Cli.Output;
using MoeSharp.Dispatch;
using MoeSharp.Routing;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe train</c>.</summary>
internal sealed class TrainSettings : CommandSettings
{
    [CommandOption("--steps <N>")]
    [Description("Optimizer steps, at most 10000000. Default 200.")]
    public int Steps { get; init; } = 200;

    [CommandOption("--world <N>")]
    [Description("Ranks (= EP size). Default 1; under --comm mpi the job's size (an explicit value must agree).")]
    public int? World { get; init; }

    [CommandOption("--sp <N>")]
    [Description("Sequence-parallel group size; divides --world. Default 1.")]
    public int Sp { get; init; } = 1;

    [CommandOption("--sharding <POLICY>")]
    [Description("SP sharding: pad or balanced. Default balanced.")]
    public string Sharding { get; init; } = "balanced";

    [CommandOption("--layout <LAYOUT>")]
    [Description("Sequence layout: replicated or sharded. Default replicated.")]
    public string Layout { get; init; } = "replicated";

    [CommandOption("--tokens <N>")]
    [Description("Tokens per step over all data-parallel groups. Default 64.")]
    public int Tokens { get; init; } = 64;

    [CommandOption("--dim <D>")]
    [Description("Model dimension. Default 16.")]
    public int Dim { get; init; } = 16;

    [CommandOption("--hidden <H>")]
    [Description("Routed experts' hidden dimension. Default 32.")]
    public int Hidden { get; init; } = 32;

    [CommandOption("--experts <E>")]
    [Description("Experts; a multiple of --world. Default 8.")]
    public int Experts { get; init; } = 8;

    [CommandOption("--top-k <K>")]
    [Description("Experts per token. Default 2.")]
    public int TopK { get; init; } = 2;

    [CommandOption("--shared-hidden <HS>")]
    [Description("Shared expert hidden dimension (0: none). Default 16.")]
    public int SharedHidden { get; init; } = 16;

    [CommandOption("--score-before-experts")]
    [Description("Multiply rows by their routing score before the experts.")]
    public bool ScoreBeforeExperts { get; init; }

    [CommandOption("--score-func <FUNC>")]
    [Description("Router scores: softmax (over the experts, default) or sigmoid (per expert, as DeepSeek-V3).")]
    public string ScoreFunc { get; init; } = "softmax";

    [CommandOption("--route-norm")]
    [Description("Normalize each token's chosen scores to sum to one (torchtitan's route_norm).")]
    public bool RouteNorm { get; init; }

    [CommandOption("--route-scale <S>")]
    [Description("Factor on the routing weights (torchtitan's route_scale). Default 1.")]
    public float RouteScale { get; init; } = 1f;

    [CommandOption("--expert-groups <G>")]
    [Description(
        "Node-limited routing: split the experts into G groups (each of at least two experts; 0: off, default)."
    )]
    public int ExpertGroups { get; init; }

    [CommandOption("--limited-groups <N>")]
    [Description(
        "With --expert-groups: the N best groups of each token stay eligible (1 to G; default 0, which needs --expert-groups 0)."
    )]
    public int LimitedGroups { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description(
        "host (managed kernels, default; losses bitwise the same on every layout), cuda (the layer on NVIDIA GPUs: ILGPU kernels, cuBLAS products, NCCL exchanges when each rank has its own GPU) or ilgpu-cpu (the CUDA backend's kernels on ILGPU's CPU accelerator)."
    )]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description("With --device cuda: GPUs to use (rank r on GPU r mod N). Default: every visible GPU.")]
    public int? Gpus { get; init; }

    [CommandOption("--gemm-dtype <TYPE>")]
    [Description(
        "With --device: the dtype of the layer's matrix-product inputs, float32 (default) or bfloat16 (bf16: rounded inputs, float32 accumulation, tensor cores on a GPU; weights, gradients and AdamW stay float32)."
    )]
    public string? GemmDType { get; init; }

    [CommandOption("--batch <SOURCE>")]
    [Description(
        "How each step's batch (uniform in [[-1, 1)) is drawn: sequential (System.Random, row after row on the host; the default on the host) or counter (each value a hash of seed, step and index, drawn in place on the device; the default with --device, so batch, teacher and loss stay on the device). The two give different batches for the same seed."
    )]
    public string? Batch { get; init; }

    [CommandOption("--lr <LR>")]
    [Description("AdamW learning rate. Default 0.003.")]
    public float LearningRate { get; init; } = 3e-3f;

    [CommandOption("--bias-update-coeff <C>")]
    [Description("Aux-loss-free load-balancing bias step per step (0: off). Default 0.001.")]
    public float BiasUpdateCoeff { get; init; } = 1e-3f;

    [CommandOption("--seed <N>")]
    [Description("Seeds weights, teacher and data. Default 0.")]
    public int Seed { get; init; }

    [CommandOption("--log-every <N>")]
    [Description("Print the loss, load and bias every N steps. Default 20.")]
    public int LogEvery { get; init; } = 20;

    [CommandOption("--plot <PNG>")]
    [Description("Write the loss curve to this PNG file.")]
    public string? Plot { get; init; }

    [CommandOption("--metrics <FILE>")]
    [Description("Write one JSON object per step to FILE (JSON lines, schema moesharp-metrics/1, docs/metrics.md).")]
    public string? Metrics { get; init; }

    [CommandOption("--traffic <PNG>")]
    [Description(
        "Collect traffic telemetry of each step's forward dispatch and combine and draw the rows sent between "
            + "ranks over all steps as a heatmap PNG; with --metrics, one traffic line per step (docs/metrics.md)."
    )]
    public string? Traffic { get; init; }

    [CommandOption("--save <DIR>")]
    [Description(
        "After the last step, save the layer's weights and bias, the head, the AdamW moments and the step to DIR (docs/config.md)."
    )]
    public string? Save { get; init; }

    [CommandOption("--load <DIR>")]
    [Description(
        "Resume from a --save directory: run its next step to --steps (all steps, resumed ones included); on the host the losses are bitwise those of an uninterrupted run."
    )]
    public string? Load { get; init; }

    [CommandOption("--config <TOML>")]
    [Description("Read options from a TOML job file (docs/config.md); options on the command line override it.")]
    public string? Config { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description(
        "How ranks talk: inproc (threads of this process, default) or mpi (under mpiexec, one process per rank; the job's size is the world)."
    )]
    public string? Comm { get; init; }

    [CommandOption("--profile")]
    [Description(
        "Time each of the layer's and the dispatcher's kernels from step 2 on (synchronizing around each, so the steps run slower) and print the table after the last step."
    )]
    public bool Profile { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("Seconds a collective may wait for its peers, from 0.001 to 2147483. Default 60.")]
    public double? TimeoutSeconds { get; init; }

    /// <summary>The sharding policy named by <see cref="Sharding"/>.</summary>
    public SpShardingPolicy ShardingPolicy =>
        Sharding == "pad" ? SpShardingPolicy.PadToMultiple : SpShardingPolicy.Balanced;

    /// <summary>The layout named by <see cref="Layout"/>.</summary>
    public SequenceLayout SequenceLayout => Layout == "sharded" ? SequenceLayout.Sharded : SequenceLayout.Replicated;

    /// <summary>
    /// Checks the options against an MPI job of <paramref name="jobSize"/> ranks, which is the world: an explicit
    /// <c>--world</c> must agree, and <c>--sp</c> and <c>--experts</c> must fit it.
    /// </summary>
    /// <exception cref="ArgumentException">The message names the option.</exception>
    public void CheckJob(int jobSize)
    {
        if (World is int w && w != jobSize)
            throw new ArgumentException($"--world {w} but the MPI job has {jobSize} ranks (mpiexec -n)");
        if (jobSize % Sp != 0)
            throw new ArgumentException($"--sp {Sp} must divide the MPI job's {jobSize} ranks");
        if (Experts % jobSize != 0)
            throw new ArgumentException($"--experts {Experts} must be a multiple of the MPI job's {jobSize} ranks");
    }

    /// <summary>True for <c>--gemm-dtype bfloat16</c> (or bf16).</summary>
    /// <exception cref="ArgumentException">The value is neither float32 nor bfloat16.</exception>
    public bool BFloat16Products => BenchShape.ParseRowType(GemmDType, "--gemm-dtype") == DType.BFloat16;

    /// <summary>The batch source named by <see cref="Batch"/>; null when not given (the device's default).</summary>
    /// <exception cref="ArgumentException">It is neither sequential nor counter.</exception>
    public Training.BatchSource? BatchKind =>
        Batch switch
        {
            null => null,
            "sequential" => Training.BatchSource.Sequential,
            "counter" => Training.BatchSource.Counter,
            _ => throw new ArgumentException($"--batch '{Batch}' is not sequential or counter"),
        };

    /// <summary>The world size to check the options against: <see cref="World"/>, or 1 when not given.</summary>
    public int WorldOrDefault => World ?? 1;

    /// <summary>The score function named by <see cref="ScoreFunc"/>.</summary>
    /// <exception cref="ArgumentException">It is neither softmax nor sigmoid.</exception>
    public ScoreFunction ScoreFunction =>
        ScoreFunc switch
        {
            "softmax" => ScoreFunction.Softmax,
            "sigmoid" => ScoreFunction.Sigmoid,
            _ => throw new ArgumentException($"--score-func '{ScoreFunc}' is not softmax or sigmoid"),
        };

    public override ValidationResult Validate()
    {
        try
        {
            if (MpiJob.CheckLaunched(CommKinds.Parse(Comm)) is { } notInJob)
                return ValidationResult.Error(notInJob);
            _ = ScoreFunction;
            _ = BatchKind;
            CheckRouter();
            if (Metrics is not null)
                OutputPaths.CheckFile("--metrics", Metrics);
            if (Plot is not null)
                OutputPaths.CheckFile("--plot", Plot);
            if (Traffic is not null)
                OutputPaths.CheckFile("--traffic", Traffic);
            if (Save is not null)
                OutputPaths.CheckDirectory("--save", Save);
            if (Load is not null && !Directory.Exists(Load))
                throw new ArgumentException($"--load {Load}: no such directory");
            new PathCollisions()
                .Reads("--config", Config)
                .Reads("--load", Load, Training.TrainCheckpoint.LayerFile, replacedBy: "--save")
                .Reads("--load", Load, Training.TrainCheckpoint.TrainerFile, replacedBy: "--save")
                .Writes("--save", Save)
                .Writes("--save", Save, Training.TrainCheckpoint.LayerFile)
                .Writes("--save", Save, Training.TrainCheckpoint.TrainerFile)
                .Writes("--metrics", Metrics)
                .Writes("--plot", Plot)
                .Writes("--traffic", Traffic)
                .Check();
            _ = ComputeOptions.Parse(Device, Gpus);
            if (BFloat16Products && Device is null or "host")
                throw new ArgumentException($"--gemm-dtype {GemmDType} needs --device cuda or ilgpu-cpu");
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        int world = WorldOrDefault;
        // Under --comm mpi without --world the job's size is the world, known only at run time (CheckJob).
        bool worldKnown = World is not null || CommKinds.Parse(Comm) != CommKind.Mpi;
        if (Steps < 1)
            return ValidationResult.Error($"--steps {Steps} must be at least 1");
        if (Faults.OptionLimits.AtMost("--steps", Steps, Faults.OptionLimits.MaxSteps) is { Successful: false } steps)
            return steps;
        if (world < 1)
            return ValidationResult.Error($"--world {world} must be at least 1");
        if (Sp < 1 || (worldKnown && world % Sp != 0))
            return ValidationResult.Error($"--sp {Sp} must be at least 1 and divide --world {world}");
        if (Sharding is not ("pad" or "balanced"))
            return ValidationResult.Error($"--sharding '{Sharding}' must be pad or balanced");
        if (Layout is not ("replicated" or "sharded"))
            return ValidationResult.Error($"--layout '{Layout}' must be replicated or sharded");
        if (Tokens < 1 || Dim < 1 || Hidden < 1 || SharedHidden < 0)
            return ValidationResult.Error(
                "--tokens, --dim and --hidden must be positive and --shared-hidden non-negative"
            );
        if (Experts < 1 || (worldKnown && Experts % world != 0))
            return ValidationResult.Error($"--experts {Experts} must be a positive multiple of --world {world}");
        if (TopK < 1 || TopK > Experts)
            return ValidationResult.Error($"--top-k {TopK} must be in [1, {Experts}]");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate))
            return ValidationResult.Error($"--lr {LearningRate} must be positive");
        if (!(BiasUpdateCoeff >= 0) || !float.IsFinite(BiasUpdateCoeff))
            return ValidationResult.Error($"--bias-update-coeff {BiasUpdateCoeff} must be non-negative");
        if (LogEvery < 1)
            return ValidationResult.Error($"--log-every {LogEvery} must be at least 1");
        ValidationResult timeout = Faults.OptionLimits.Timeout(TimeoutSeconds);
        return timeout.Successful ? Faults.SettingsLimits.Train(this) : timeout;
    }

    /// <summary>
    /// The router's rules (<see cref="MoeSharp.Routing.TokenChoiceTopKRouter"/>) in the options' names.
    /// </summary>
    private void CheckRouter()
    {
        if (!float.IsFinite(RouteScale))
            throw new ArgumentException($"--route-scale {RouteScale} must be finite");
        if (ExpertGroups < 0)
            throw new ArgumentException($"--expert-groups {ExpertGroups} must not be negative");
        if (ExpertGroups == 0)
        {
            if (LimitedGroups != 0)
                throw new ArgumentException($"--limited-groups {LimitedGroups} needs --expert-groups");
            return;
        }
        if (Experts % ExpertGroups != 0 || Experts / ExpertGroups < 2)
        {
            throw new ArgumentException(
                $"--expert-groups {ExpertGroups} must divide --experts {Experts} into groups of at least two"
            );
        }
        if (LimitedGroups < 1 || LimitedGroups > ExpertGroups)
        {
            throw new ArgumentException(
                $"--limited-groups {LimitedGroups} must be in [1, {ExpertGroups}] (--expert-groups)"
            );
        }
        if (LimitedGroups * (Experts / ExpertGroups) < TopK)
        {
            throw new ArgumentException(
                $"--limited-groups {LimitedGroups} × {Experts / ExpertGroups} experts per group leaves fewer than --top-k {TopK} experts eligible"
            );
        }
    }
}
