using System.ComponentModel;
using MoeSharp.Cli.Output;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe bench</c>.</summary>
internal sealed class BenchSettings : CommandSettings
{
    [CommandOption("--world <N>")]
    [Description(
        "In-process ranks (= EP size); 1 uses the local dispatcher; under --comm mpi the job's size counts. Default 1 (8 with --uneven)."
    )]
    public int World
    {
        get => WorldOption ?? 1;
        init => WorldOption = value;
    }

    [CommandOption("--tokens <T>")]
    [Description(
        "Tokens per rank. Default 16384. With --uneven: T per SP group before the remainder r, a multiple of the largest SP; default 4096."
    )]
    public int Tokens
    {
        get => TokensOption ?? 16384;
        init => TokensOption = value;
    }

    [CommandOption("--dim <D>")]
    [Description("Model dimension. Default 2048 (256 with --uneven).")]
    public int Dim
    {
        get => DimOption ?? 2048;
        init => DimOption = value;
    }

    [CommandOption("--experts <E>")]
    [Description("Experts; a multiple of --world. Default 64.")]
    public int Experts { get; init; } = 64;

    [CommandOption("--top-k <K>")]
    [Description("Experts per token. Default 8.")]
    public int TopK { get; init; } = 8;

    [CommandOption("--score <WHEN>")]
    [Description("Multiply by the score before or after the experts. Default after.")]
    public string? Score { get; init; }

    [CommandOption("--warmup <N>")]
    [Description("Untimed runs first, at most 1000000. Default 2.")]
    public int Warmup { get; init; } = 2;

    [CommandOption("--repeats <N>")]
    [Description("Timed runs, at most 1000000; the median is reported. Default 7.")]
    public int Repeats { get; init; } = 7;

    [CommandOption("--seed <S>")]
    [Description("Random seed of the inputs. Default 0.")]
    public int Seed { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description(
        "inproc (threads of this process, default) or mpi (under mpiexec; the job's size is the world, and the exchange is also timed through raw MPI_Alltoallv)."
    )]
    public string? Comm { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description(
        "host (default), cuda (one rank per GPU, NCCL exchanges; in-process --gpus, not --world, sets the ranks) or ilgpu-cpu."
    )]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description("With --device cuda: GPUs (= ranks) to use. Default: every visible GPU.")]
    public int? Gpus { get; init; }

    [CommandOption("--preset <NAME>")]
    [Description(
        "Shape preset: deepseek (4096 tokens/rank, D 7168, E 256, top-8) or qwen3 (8192 tokens/rank, D 2048, E 128, top-8); overrides --tokens/--dim/--experts/--top-k; rows bfloat16 unless --dtype."
    )]
    public string? Preset { get; init; }

    [CommandOption("--dtype <TYPE>")]
    [Description("Row dtype: float32 (f32) or bfloat16 (bf16). Default float32, or bfloat16 with --preset.")]
    public string? DType { get; init; }

    [CommandOption("--gemm")]
    [Description(
        "With --device cuda: time the experts' grouped GEMM (cuBLAS, bfloat16 in, float32 out) next to a dense GEMM of the same FLOPs instead of dispatch."
    )]
    public bool Gemm { get; init; }

    [CommandOption("--profile")]
    [Description("With --device: also time each kernel (synchronizing after each, so the totals run slower).")]
    public bool Profile { get; init; }

    [CommandOption("--uneven")]
    [Description(
        "Sweep T = --tokens + r (r = 0, 1, SP-1) over SP 2, 4, 8 (those dividing --world): PadToMultiple and Balanced sharding, replicated and sharded layouts side by side; time, bytes exchanged, pad rows; outputs checked bitwise against PadToMultiple/replicated."
    )]
    public bool Uneven { get; init; }

    [CommandOption("--layer")]
    [Description(
        "Time the MoE layer step on one rank instead of dispatch: forward, backward and AdamW with each phase, and the expert products' TFLOP/s next to a dense bfloat16 cuBLAS GEMM (cuda). Presets qwen3 (T 16384, D 2048, H 768, E 128, K 8) and small (T 8192, D 1024, H 1024, E 16, K 2); --dtype bf16 (default on a device) rounds the products' inputs to bfloat16."
    )]
    public bool Layer { get; init; }

    [CommandOption("--hidden <H>")]
    [Description("With --layer: the experts' hidden size. Default 768.")]
    public int Hidden { get; init; } = 768;

    [CommandOption("--traffic")]
    [Description(
        "Also time dispatch and combine with traffic telemetry on (a second dispatcher in the same loop, "
            + "and a third with it off as an A/A control, in rotating order; all timed to a barrier after each phase, so "
            + "all count the slowest rank) and print the overhead, and the telemetry's own work timed alone; host "
            + "dispatch benchmark only."
    )]
    public bool Traffic { get; init; }

    [CommandOption("--wire <FORMAT>")]
    [Description(
        "fp8: compare FP8 rows on the wire (E4M3, one power-of-two scale per 128 columns) with native rows in one run. "
            + "Dispatch (in-process, --world 2 or more): both dispatchers on the same inputs in rotating order, the "
            + "bytes each forward exchange handed to the all-to-all-v, their ratio, median times and the FP8 output's "
            + "error. With --layer (host, one rank): the layer output's relative error per token, FP8 against rows of "
            + "bfloat16 values. --tokens overrides a preset's T. native: the normal benchmark."
    )]
    public string? Wire { get; init; }

    [CommandOption("--json")]
    [Description(
        "Print the --metrics records (one JSON object per measurement, schema moesharp-metrics/1, docs/metrics.md) to stdout instead of a table."
    )]
    public bool Json { get; init; }

    [CommandOption("--metrics <FILE>")]
    [Description(
        "Write one JSON object per measurement to FILE (JSON lines, schema moesharp-metrics/1, docs/metrics.md)."
    )]
    public string? Metrics { get; init; }

    [CommandOption("--capacity-factor <F>")]
    [Description(
        "Time dispatch -> combine in capacity mode (docs/capacity.md; slots of C = ceil(F*N/S) rows per peer, counts "
            + "kept on the device) beside the normal mode in one loop, on --world in-process ranks, host or --device; "
            + "reports both medians, their ratio and how often the overflow round ran."
    )]
    public double? CapacityFactor { get; init; }

    [CommandOption("--capacity-rows <R>")]
    [Description("As --capacity-factor with a fixed bound of R rows per rank (C = ceil(R/S) per peer).")]
    public int? CapacityRows { get; init; }

    [CommandOption("--graph")]
    [Description(
        "With --capacity-factor/--capacity-rows, --device cuda and --world 1: also capture the capacity-mode step "
            + "(dispatch -> scaled-identity experts on the device -> combine) in a CUDA graph and time its replay in "
            + "the same loop; float32 rows."
    )]
    public bool Graph { get; init; }

    [CommandOption("--config <TOML>")]
    [Description("Read options from a TOML job file (docs/config.md); options on the command line override it.")]
    public string? Config { get; init; }

    /// <summary><c>--world</c> as given, or null (the mode's default applies).</summary>
    internal int? WorldOption { get; private set; }

    /// <summary><c>--tokens</c> as given, or null.</summary>
    internal int? TokensOption { get; private set; }

    /// <summary><c>--dim</c> as given, or null.</summary>
    internal int? DimOption { get; private set; }

    public override ValidationResult Validate()
    {
        // Every mode runs warmup + repeats times: bounded here, before any mode's own checks.
        if (Faults.OptionLimits.AtMost("--warmup", Warmup, Faults.OptionLimits.MaxRuns) is { Successful: false } w)
            return w;
        if (Faults.OptionLimits.AtMost("--repeats", Repeats, Faults.OptionLimits.MaxRuns) is { Successful: false } r)
            return r;
        if (Uneven && Layer)
            return ValidationResult.Error("--uneven and --layer are two modes of bench: give one of them");
        string? otherMode =
            Uneven ? "--uneven"
            : Layer ? "--layer"
            : Gemm ? "--gemm"
            : Device is not (null or "host") ? $"--device {Device}"
            : null;
        try
        {
            // Before the modes' own checks, which return early: every mode writes --metrics.
            new PathCollisions()
                .Reads("--config", Config)
                .Writes("--metrics", Metrics)
                .Check();
            bool capacity = CapacityOptions.Parse(CapacityFactor, CapacityRows) is not null;
            if (
                Graph
                && (
                    !capacity
                    || Device != "cuda"
                    || World != 1
                    || BenchShape.ParseRowType(DType) == Tensors.DType.BFloat16
                )
            )
                return ValidationResult.Error(
                    "--graph needs --capacity-factor or --capacity-rows, --device cuda, --world 1 and float32 rows"
                );
            if (capacity && WireOption.Parse(Wire) is Dispatch.RowWireFormat.Fp8E4M3)
                return ValidationResult.Error(
                    "--capacity-factor/--capacity-rows move rows in their own dtype: not with --wire fp8"
                );
            if (capacity && (Uneven || Layer || Gemm || Traffic))
                return ValidationResult.Error(
                    "--capacity-factor/--capacity-rows time dispatch and combine, not with --uneven, --layer, --gemm "
                        + "or --traffic"
                );
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        if (Traffic && otherMode is not null)
        {
            return ValidationResult.Error($"--traffic times the host dispatch benchmark, not with {otherMode}");
        }
        if (Wire is not (null or "native"))
            return WireBenchReport.Check(this) is { } wireError
                ? ValidationResult.Error(wireError)
                : ValidationResult.Success();
        if (Uneven)
            return ValidateUneven();
        if (Layer)
            return LayerBenchReport.Check(this) is { } layerError
                ? ValidationResult.Error(layerError)
                : ValidationResult.Success();
        BenchShape shape;
        try
        {
            if (MpiJob.CheckLaunched(CommKinds.Parse(Comm)) is { } notInJob)
                return ValidationResult.Error(notInJob);
            if (Metrics is not null)
                OutputPaths.CheckFile("--metrics", Metrics);
            _ = RunSettings.ParseScoreBefore(Score);
            _ = CommKinds.Parse(Comm);
            _ = ComputeOptions.Parse(Device, Gpus);
            shape = BenchShape.Resolve(this);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        // Both would otherwise be ignored silently on the host.
        if (Gemm && Device != "cuda")
            return ValidationResult.Error("--gemm needs --device cuda (cuBLAS)");
        if (Profile && Device is null or "host")
            return ValidationResult.Error("--profile needs --device cuda or ilgpu-cpu");
        if (Warmup < 0)
            return ValidationResult.Error($"--warmup {Warmup} must not be negative");
        if (Repeats < 1)
            return ValidationResult.Error($"--repeats {Repeats} must be at least 1");
        ValidationResult basic = RunCaseOptions.Check(
            World,
            1,
            shape.Tokens,
            shape.Dim,
            shape.Experts,
            shape.TopK,
            1,
            null
        );
        if (!basic.Successful)
            return basic;
        if (Comm is null or "inproc" && Device is null or "host" && shape.Experts % World != 0)
            return ValidationResult.Error($"--experts {shape.Experts} must be a multiple of --world {World}");
        if (shape.TopK > shape.Experts)
            return ValidationResult.Error($"--top-k {shape.TopK} must not exceed --experts {shape.Experts}");
        if (
            CommKinds.Parse(Comm) == CommKind.Mpi
            && Device is null or "host"
            && Benchmarks.ExchangeBenchmark.RawLimitError(shape) is { } raw
        )
            return ValidationResult.Error(raw);
        return Faults.SettingsLimits.Bench(this, shape);
    }

    private ValidationResult ValidateUneven()
    {
        UnevenBenchOptions sweep;
        try
        {
            _ = RunSettings.ParseScoreBefore(Score);
            CommKind comm = CommKinds.Parse(Comm);
            if (MpiJob.CheckLaunched(comm) is { } notInJob)
                return ValidationResult.Error(notInJob);
            if (Metrics is not null)
                OutputPaths.CheckFile("--metrics", Metrics);
            ComputeOptions compute = ComputeOptions.Parse(Device, Gpus);
            if (Warmup < 0)
                return ValidationResult.Error($"--warmup {Warmup} must not be negative");
            if (Repeats < 1)
                return ValidationResult.Error($"--repeats {Repeats} must be at least 1");
            // The world of an MPI job or of the GPUs is known only at run time: check against the smallest (2) here,
            // exactly then.
            sweep = UnevenBenchOptions.Resolve(
                this,
                comm == CommKind.InProcess && compute.Device != DeviceKind.Cuda ? null : 2
            );
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        return Faults.SettingsLimits.Uneven(this, sweep);
    }
}
