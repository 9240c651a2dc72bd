using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe bench-cpu</c>.</summary>
internal sealed class CpuBenchSettings : CommandSettings
{
    [CommandOption("--what <LIST>")]
    [Description(
        "Comma-separated: gemm (host GEMM GFLOP/s against the FMA peak: the nominal formula, and the measured rate of independent register-only FMA chains on as many threads of the GEMM's own worker team, 512- and 256-bit, right before and right after the GEMM, rows measured against the higher; and each product against its adjacent peak, a 2-round probe at the kernel's width right before and after that product's runs, and against its adjacent kernel ceiling, the GEMM micro-kernel's own rate on cache-resident panels on the same threads right before and after them), exchange (in-process all-to-all-v against a copy of the same bytes). Default gemm,exchange."
    )]
    public string What { get; init; } = "gemm,exchange";

    [CommandOption("--threads <N>")]
    [Description("Threads of the process (HostThreads.Count), shared among the ranks. Default: every core.")]
    public int? Threads { get; init; }

    [CommandOption("--world <LIST>")]
    [Description("Comma-separated in-process world sizes for the exchange. Default 4,8.")]
    public string Worlds { get; init; } = "4,8";

    [CommandOption("--mib <N>")]
    [Description("MiB each rank sends per exchange, in equal shares to every rank. Default 64.")]
    public int MiB { get; init; } = 64;

    [CommandOption("--ghz <GHZ>")]
    [Description("Core clock for the FMA peak. Default: /proc/cpuinfo's cpu MHz (the first core's).")]
    public double? Ghz { get; init; }

    [CommandOption("--fma-units <N>")]
    [Description("FMA pipes per core for the peak. Default 2.")]
    public int FmaUnits { get; init; } = 2;

    [CommandOption("--fma-lanes <N>")]
    [Description(
        "float32 lanes per FMA pipe for the peak (8: a 256-bit pipe, as on AMD Zen 4, which splits AVX-512 in two; 16: a 512-bit pipe). Default 8."
    )]
    public int FmaLanes { get; init; } = 8;

    [CommandOption("--probe-rounds <N>")]
    [Description(
        "Timed rounds of the measured FMA peak (about 10 ms each per width, after one untimed round); the best is reported. Default 5."
    )]
    public int ProbeRounds { get; init; } = 5;

    [CommandOption("--warmup <N>")]
    [Description(
        "Untimed runs of each measurement first. Default 20: with two, GEMM products on 16 threads were timed "
            + "short of their steady rate."
    )]
    public int Warmup { get; init; } = 20;

    [CommandOption("--repeats <N>")]
    [Description("Timed runs, back to back (each timed on its own); the median is reported. Default 7.")]
    public int Repeats { get; init; } = 7;

    [CommandOption("--json")]
    [Description("Print one JSON object per measurement instead of tables.")]
    public bool Json { get; init; }

    /// <summary>The parts to run.</summary>
    public string[] Parts => What.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>The world sizes of the exchange.</summary>
    public int[] WorldSizes =>
        Worlds
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(w => int.TryParse(w, out int v) ? v : 0)
            .ToArray();

    public override ValidationResult Validate()
    {
        foreach (string part in Parts)
        {
            if (part is not ("gemm" or "exchange"))
                return ValidationResult.Error($"--what: '{part}' is neither gemm nor exchange");
        }
        if (Threads is < 1)
            return ValidationResult.Error($"--threads {Threads} must be at least 1");
        if (WorldSizes.Length == 0 || WorldSizes.Any(w => w is < 2 or > 256))
        {
            return ValidationResult.Error($"--world '{Worlds}' must list sizes from 2 to 256");
        }
        if (MiB is < 1 or > 1024)
            return ValidationResult.Error($"--mib {MiB} must be from 1 to 1024");
        if (Ghz is <= 0)
            return ValidationResult.Error($"--ghz {Ghz} must be positive");
        if (FmaUnits < 1 || FmaLanes < 1)
            return ValidationResult.Error("--fma-units and --fma-lanes must be at least 1");
        if (ProbeRounds < 1)
            return ValidationResult.Error($"--probe-rounds {ProbeRounds} must be at least 1");
        if (Warmup < 0)
            return ValidationResult.Error($"--warmup {Warmup} must not be negative");
        if (Repeats < 1)
            return ValidationResult.Error($"--repeats {Repeats} must be at least 1");
        return Parts.Contains("exchange")
            ? Faults.CommandMemory.Exchange(WorldSizes.Max(), MiB)
            : ValidationResult.Success();
    }
}
