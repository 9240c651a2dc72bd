using System.ComponentModel;
using MoeSharp.Cli.Output;
using MoeSharp.Dispatch;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// Options of <c>moe run</c>. With none given, the embedded default runs the seed case and a large one.
/// </summary>
internal sealed class RunSettings : CommandSettings
{
    [CommandOption("--world <N>")]
    [Description("Ranks in the world (= EP size). Default 4.")]
    public int? World { get; init; }

    [CommandOption("--sp <N>")]
    [Description("Sequence-parallel group size; divides --world. Default 2.")]
    public int? Sp { get; init; }

    [CommandOption("--tokens <T>")]
    [Description("Tokens per SP group. Default 4096.")]
    public int? Tokens { get; init; }

    [CommandOption("--dim <D>")]
    [Description("Model dimension. Default 128.")]
    public int? Dim { get; init; }

    [CommandOption("--experts <E>")]
    [Description("Experts; a multiple of --world. Default 64.")]
    public int? Experts { get; init; }

    [CommandOption("--top-k <K>")]
    [Description("Experts per token, at most --experts. Default 8.")]
    public int? TopK { get; init; }

    [CommandOption("--sharding <POLICY>")]
    [Description("SP sharding: pad (torchtitan's pad-to-multiple) or balanced (no padding). Default pad.")]
    public string? Sharding { get; init; }

    [CommandOption("--layout <LAYOUT>")]
    [Description("Sequence layout: replicated (every SP rank holds all tokens) or sharded. Default replicated.")]
    public string? Layout { get; init; }

    [CommandOption("--score <WHEN>")]
    [Description("Multiply by the routing score before or after the experts. Default after.")]
    public string? Score { get; init; }

    [CommandOption("--align <A>")]
    [Description("Pad each local expert's rows to a multiple of A (1 = off). Default 1.")]
    public int? Align { get; init; }

    [CommandOption("--seed <S>")]
    [Description("Random seed of the inputs. Default 0.")]
    public int? Seed { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("Seconds a collective may wait for its peers, from 0.001 to 2147483. Default 60.")]
    public double? TimeoutSeconds { get; init; }

    [CommandOption("--dtype <TYPE>")]
    [Description("Row dtype: float32 (f32, default) or bfloat16 (bf16); bfloat16 rows are verified bitwise too.")]
    public string? DType { get; init; }

    [CommandOption("--wire <FORMAT>")]
    [Description(
        "How dispatch sends the rows: native (their dtype, default) or fp8 (FP8 E4M3 with one power-of-two scale per 128 columns, dequantised on the receiving rank; docs/fp8-and-telemetry.md). The single-rank reference uses the same format, so FP8 runs are verified bitwise too."
    )]
    public string? Wire { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description(
        "How ranks talk: inproc (threads of this process, default) or mpi (under mpiexec, one process per rank; the job's size is the world)."
    )]
    public string? Comm { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description(
        "host (managed kernels, default), cuda (ILGPU kernels on NVIDIA GPUs, NCCL exchanges when each rank has its own GPU) or ilgpu-cpu (the CUDA backend's kernels on ILGPU's CPU accelerator)."
    )]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description("With --device cuda: GPUs to use (rank r on GPU r mod N). Default: every visible GPU.")]
    public int? Gpus { get; init; }

    [CommandOption("--metrics <FILE>")]
    [Description("Write one JSON object per case to FILE (JSON lines, schema moesharp-metrics/1, docs/metrics.md).")]
    public string? Metrics { get; init; }

    [CommandOption("--traffic <PNG>")]
    [Description(
        "Collect traffic telemetry (docs/metrics.md, event traffic) and draw the rows sent between ranks "
            + "as a heatmap PNG (the last case's when several run); with --metrics, one traffic line per case."
    )]
    public string? Traffic { get; init; }

    [CommandOption("--capacity-factor <F>")]
    [Description(
        "Capacity mode (docs/capacity.md): each rank sends each peer a fixed slot of C = ceil(F*N/S) rows, the counts "
            + "stay on the device, and an overflow round moves what does not fit; verified bitwise like the normal "
            + "mode. Not with --traffic."
    )]
    public double? CapacityFactor { get; init; }

    [CommandOption("--capacity-rows <R>")]
    [Description("Capacity mode with a fixed bound of R rows per rank (C = ceil(R/S) per peer) instead of a factor.")]
    public int? CapacityRows { get; init; }

    [CommandOption("--config <TOML>")]
    [Description("Read options from a TOML job file (docs/config.md); options on the command line override it.")]
    public string? Config { get; init; }

    /// <summary>True when no problem option was given: run the embedded default cases.</summary>
    public bool IsDefault =>
        World is null
        && Sp is null
        && Tokens is null
        && Dim is null
        && Experts is null
        && TopK is null
        && Sharding is null
        && Layout is null
        && Score is null
        && Align is null
        && Seed is null
        && DType is null
        && Wire is null;

    public override ValidationResult Validate()
    {
        try
        {
            if (MpiJob.CheckLaunched(CommKinds.Parse(Comm)) is { } notInJob)
                return ValidationResult.Error(notInJob);
            if (Metrics is not null)
                OutputPaths.CheckFile("--metrics", Metrics);
            if (Traffic is not null)
                OutputPaths.CheckFile("--traffic", Traffic);
            new PathCollisions()
                .Reads("--config", Config)
                .Writes("--metrics", Metrics)
                .Writes("--traffic", Traffic)
                .Check();
            _ = ParseSharding(Sharding);
            _ = ParseLayout(Layout);
            _ = ParseScoreBefore(Score);
            _ = CommKinds.Parse(Comm);
            _ = ComputeOptions.Parse(Device, Gpus);
            _ = BenchShape.ParseRowType(DType);
            _ = WireOption.Parse(Wire);
            if (
                CapacityOptions.Parse(CapacityFactor, CapacityRows) is not null
                && WireOption.Parse(Wire) is Dispatch.RowWireFormat.Fp8E4M3
            )
                return ValidationResult.Error(
                    "--capacity-factor/--capacity-rows move rows in their own dtype: not with --wire fp8"
                );
            if (CapacityOptions.Parse(CapacityFactor, CapacityRows) is not null && Traffic is not null)
                return ValidationResult.Error(
                    "--traffic reads the counts that capacity mode keeps on the device: "
                        + "give --traffic or --capacity-factor/--capacity-rows, not both"
                );
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        ValidationResult ranges = RunCaseOptions.Check(World, Sp, Tokens, Dim, Experts, TopK, Align, TimeoutSeconds);
        return ranges.Successful ? Faults.SettingsLimits.Run(this) : ranges;
    }

    public static SpShardingPolicy ParseSharding(string? text) =>
        text switch
        {
            null or "pad" => SpShardingPolicy.PadToMultiple,
            "balanced" => SpShardingPolicy.Balanced,
            _ => throw new ArgumentException($"--sharding '{text}' is not pad or balanced"),
        };

    public static SequenceLayout ParseLayout(string? text) =>
        text switch
        {
            null or "replicated" => SequenceLayout.Replicated,
            "sharded" => SequenceLayout.Sharded,
            _ => throw new ArgumentException($"--layout '{text}' is not replicated or sharded"),
        };

    public static bool ParseScoreBefore(string? text) =>
        text switch
        {
            "before" => true,
            null or "after" => false,
            _ => throw new ArgumentException($"--score '{text}' is not before or after"),
        };
}
