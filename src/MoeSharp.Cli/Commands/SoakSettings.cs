using System.ComponentModel;
using System.Globalization;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe soak</c>.</summary>
internal sealed class SoakSettings : CommandSettings
{
    [CommandOption("--seconds <N>")]
    [Description("How long to keep starting runs. Default 30.")]
    public double Seconds { get; init; } = 30;

    [CommandOption("--runs <N>")]
    [Description("Stop after this many runs, even before --seconds. Default: no limit.")]
    public int? Runs { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description(
        "inproc (default: worlds of 1 to --max-world threads, faults injected) or mpi (under mpiexec: worlds of the job's first ranks, fault-free, since a failed collective ends an MPI job by design)."
    )]
    public string? Comm { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("host (default), ilgpu-cpu or cuda: where the ranks compute.")]
    public string? Device { get; init; }

    [CommandOption("--fault-rate <P>")]
    [Description(
        "Fraction of in-process runs with one injected fault (throw, delay past the timeout, return early, corrupt counts, mismatched shapes) at a random collective call of a random rank, drawn from the calls a fault-free probe of the same problem makes, so each planned fault fires. Default 0.2."
    )]
    public double FaultRate { get; init; } = 0.2;

    [CommandOption("--fault-once")]
    [Description(
        "With --comm mpi: after one fault-free run of at least two ranks, run it again with a throw at a random collective call of a random rank (drawn from the calls that run made); the job must end by MPI_Abort naming the culprit (exit non-zero). For tests of the job-ending path."
    )]
    public bool FaultOnce { get; init; }

    [CommandOption("--max-world <N>")]
    [Description("Largest in-process world drawn. Default 4.")]
    public int MaxWorld { get; init; } = 4;

    [CommandOption("--timeout <SECONDS>")]
    [Description(
        "Collective timeout of the faulted runs (fault-free runs wait 30 s), from 0.001 to 2147483 s. Default 1."
    )]
    public double TimeoutSeconds { get; init; } = 1;

    [CommandOption("--seed <S>")]
    [Description("Seed of the random configurations and faults. Default 0.")]
    public int Seed { get; init; }

    public override ValidationResult Validate()
    {
        try
        {
            if (MpiJob.CheckLaunched(CommKinds.Parse(Comm)) is { } notInJob)
                return ValidationResult.Error(notInJob);
            _ = ComputeOptions.Parse(Device, null);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        if (!double.IsFinite(Seconds) || Seconds <= 0 || Seconds > 86400)
            return Error($"--seconds {Seconds} must be in (0, 86400]");
        if (FaultOnce && CommKinds.Parse(Comm) == CommKind.InProcess)
            return Error($"--fault-once needs --comm mpi");
        if (Runs is < 1)
            return Error($"--runs {Runs} must be at least 1");
        if (!(FaultRate is >= 0 and <= 1))
            return Error($"--fault-rate {FaultRate} must be in [0, 1]");
        if (MaxWorld is < 1 or > 16)
            return Error($"--max-world {MaxWorld} must be in [1, 16]");
        return Faults.OptionLimits.Timeout(TimeoutSeconds);
    }

    private static ValidationResult Error(FormattableString message) =>
        ValidationResult.Error(message.ToString(CultureInfo.InvariantCulture));
}
