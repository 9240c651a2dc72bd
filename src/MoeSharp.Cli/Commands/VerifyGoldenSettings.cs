using System.ComponentModel;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe verify-golden</c>.</summary>
internal sealed class VerifyGoldenSettings : CommandSettings
{
    [CommandArgument(0, "[FILES]")]
    [Description(
        "Golden .safetensors files (dispatch and moe_layer kinds; other kinds are reported as not applicable). "
            + "Default: every file of the golden folder that ships with the tool."
    )]
    public string[] Files { get; init; } = [];

    [CommandOption("--timeout <SECONDS>")]
    [Description("Seconds a collective may wait for its peers, from 0.001 to 2147483. Default 60.")]
    public double? TimeoutSeconds { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description(
        "inproc (each file on its own world of threads, default) or mpi (under mpiexec: each dispatch file on the first 'world' ranks of the job, files needing more ranks are skipped; moe_layer files replay on in-process ranks of rank 0)."
    )]
    public string? Comm { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description(
        "host (default), cuda or ilgpu-cpu: where the dispatch files replay (layer files replay on the host)."
    )]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description(
        "With --device cuda: GPUs to use (rank r on GPU r mod N; NCCL when a file's world fits). Default: every visible GPU."
    )]
    public int? Gpus { get; init; }

    public override ValidationResult Validate()
    {
        // The file reader would say only "(Parameter 'path')".
        if (Files.Any(string.IsNullOrWhiteSpace))
            return ValidationResult.Error("FILES: an empty path ('') names no golden file");
        if (!Faults.OptionLimits.Timeout(TimeoutSeconds).Successful)
            return Faults.OptionLimits.Timeout(TimeoutSeconds);
        try
        {
            if (MpiJob.CheckLaunched(CommKinds.Parse(Comm)) is { } notInJob)
                return ValidationResult.Error(notInJob);
            _ = ComputeOptions.Parse(Device, Gpus);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        return ValidationResult.Success();
    }
}
