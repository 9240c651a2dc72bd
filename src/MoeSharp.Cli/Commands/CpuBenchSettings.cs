using System.ComponentModel;
using System.Globalization;
using MoeSharp.Cli.Faults;
using MoeSharp.Compute;
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
    [Description(
        "Threads of the process (HostThreads.Count), from 1 to 4096, shared among the ranks. Default: every core."
    )]
    public int? Threads { get; init; }

    [CommandOption("--world <LIST>")]
    [Description("Comma-separated in-process world sizes for the exchange. Default 4,8.")]
    public string Worlds { get; init; } = "4,8";

    [CommandOption("--mib <N>")]
    [Description("MiB each rank sends per exchange, in equal shares to every rank. Default 64.")]
    public int MiB { get; init; } = 64;

    [CommandOption("--ghz <GHZ>")]
    [Description(
        "Core clock for the FMA peak, above 0 and at most 10. Default: /proc/cpuinfo's cpu MHz (the first core's)."
    )]
    public double? Ghz { get; init; }

    [CommandOption("--fma-units <N>")]
    [Description("FMA pipes per core for the peak, from 1 to 64. Default 2.")]
    public int FmaUnits { get; init; } = 2;

    [CommandOption("--fma-lanes <N>")]
    [Description(
        "float32 lanes per FMA pipe for the peak (8: a 256-bit pipe, as on AMD Zen 4, which splits AVX-512 in two; 16: a 512-bit pipe), from 1 to 64. Default 8."
    )]
    public int FmaLanes { get; init; } = 8;

    [CommandOption("--probe-rounds <N>")]
    [Description(
        "Timed rounds of the measured FMA peak (about 10 ms each per width, after one untimed round), from 1 to 1000; the best is reported. Default 5."
    )]
    public int ProbeRounds { get; init; } = 5;

    [CommandOption("--warmup <N>")]
    [Description(
        "Untimed runs of each measurement first, at most 1000000. Default 20: with two, GEMM products on 16 threads were timed "
            + "short of their steady rate."
    )]
    public int Warmup { get; init; } = 20;

    [CommandOption("--repeats <N>")]
    [Description(
        "Timed runs, back to back (each timed on its own), at most 1000000; the median is reported. Default 7."
    )]
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
        if (Parts.Length == 0)
            return ValidationResult.Error($"--what '{What}' must list gemm, exchange or both");
        foreach (string part in Parts)
        {
            if (part is not ("gemm" or "exchange"))
                return ValidationResult.Error($"--what: '{part}' is neither gemm nor exchange");
        }
        if (Threads is < 1 or > HostThreads.MaxCount)
            return ValidationResult.Error($"--threads {Threads} must be from 1 to {HostThreads.MaxCount}");
        if (WorldSizes.Length == 0 || WorldSizes.Any(w => w is < 2 or > 256))
        {
            return ValidationResult.Error($"--world '{Worlds}' must list sizes from 2 to 256");
        }
        if (MiB is < 1 or > 1024)
            return ValidationResult.Error($"--mib {MiB} must be from 1 to 1024");
        if (Ghz is double ghz && !(ghz > 0 && ghz <= OptionLimits.MaxGhz))
        {
            return ValidationResult.Error(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"--ghz {ghz} must be above 0 and at most {OptionLimits.MaxGhz}"
                )
            );
        }
        if (FmaUnits is < 1 or > OptionLimits.MaxFmaUnitsOrLanes)
            return ValidationResult.Error(
                $"--fma-units {FmaUnits} must be from 1 to {OptionLimits.MaxFmaUnitsOrLanes}"
            );
        if (FmaLanes is < 1 or > OptionLimits.MaxFmaUnitsOrLanes)
            return ValidationResult.Error(
                $"--fma-lanes {FmaLanes} must be from 1 to {OptionLimits.MaxFmaUnitsOrLanes}"
            );
        if (ProbeRounds is < 1 or > OptionLimits.MaxProbeRounds)
            return ValidationResult.Error(
                $"--probe-rounds {ProbeRounds} must be from 1 to {OptionLimits.MaxProbeRounds}"
            );
        if (Warmup is < 0 or > OptionLimits.MaxRuns)
            return ValidationResult.Error($"--warmup {Warmup} must be from 0 to {OptionLimits.MaxRuns}");
        if (Repeats is < 1 or > OptionLimits.MaxRuns)
            return ValidationResult.Error($"--repeats {Repeats} must be from 1 to {OptionLimits.MaxRuns}");
        return Parts.Contains("exchange")
            ? Faults.CommandMemory.Exchange(WorldSizes.Max(), MiB)
            : ValidationResult.Success();
    }
}
