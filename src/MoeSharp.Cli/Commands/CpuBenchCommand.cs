using System.Globalization;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Compute;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe bench-cpu</c>: the host GEMM's GFLOP/s against the cores' FMA peak (the nominal formula and the rate of
/// register-only FMA chains measured on the same threads), and the in-process all-to-all-v against a copy of the same
/// bytes, on <c>--threads</c> threads.
/// </summary>
internal sealed class CpuBenchCommand : Command<CpuBenchSettings>
{
    /// <summary>Timed rounds of each product's adjacent probe (about 10 ms each): short enough to run beside all 15
    /// products, the best of two to skip a round that a preemption cut.</summary>
    private const int AdjacentProbeRounds = 2;

    public override int Execute(CommandContext context, CpuBenchSettings s, CancellationToken cancellationToken)
    {
        if (s.Threads is int threads)
            HostThreads.Count = threads;
        int n = HostThreads.Count;
        string isa =
            Avx512F.IsSupported ? "AVX-512"
            : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA"
            : "no FMA ISA";
        if (!s.Json)
        {
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    $"bench-cpu: {n} threads of {Environment.ProcessorCount} cores, {isa}, "
                        + $"median of {s.Repeats} after {s.Warmup} warm-up"
                )
            );
        }
        foreach (string part in s.Parts)
        {
            if (part == "gemm")
                Gemm(s, n, isa);
            else
                Exchange(s, n);
        }
        return 0;
    }

    private static void Gemm(CpuBenchSettings s, int threads, string isa)
    {
        double ghz =
            s.Ghz ?? CpuGhz() ?? throw new ArgumentException("--ghz: no cpu MHz in /proc/cpuinfo; give the clock");
        double peak = threads * ghz * s.FmaUnits * s.FmaLanes * 2;
        string formula = string.Create(
            CultureInfo.InvariantCulture,
            $"{threads} cores x {ghz:F2} GHz x {s.FmaUnits} FMA units x {s.FmaLanes} lanes x 2 = {peak:F1} GFLOP/s"
        );
        // Measured on as many threads as the GEMM gets, right before and right after it (on a shared or virtual
        // machine the rate the cores deliver drifts over seconds): the higher of the two at the width the kernel uses
        // is the ceiling its rows are measured against.
        // Each product also gets its own adjacent peak (a short probe at the kernel's width right before and right
        // after its runs), which follows the drift that the two probes around the whole set cannot.
        int kernelBits = GemmMicroKernel.Wide ? 512 : 256;
        var before = Probe(threads, s.ProbeRounds);
        var results = HostGemmBenchmark.Run(
            HostGemmBenchmark.Shapes,
            s.Warmup,
            s.Repeats,
            () => FmaPeakProbe.Measure(kernelBits, threads, AdjacentProbeRounds)?.Gflops ?? double.NaN,
            () => KernelCeilingProbe.Measure(threads, AdjacentProbeRounds)
        );
        var after = Probe(threads, s.ProbeRounds);
        var probes = before
            .Select(p => (When: "before", Probe: p))
            .Concat(after.Select(p => (When: "after", Probe: p)));
        double measured = probes
            .Where(p => p.Probe.Bits == kernelBits)
            .Select(p => p.Probe.Gflops)
            .DefaultIfEmpty(double.NaN)
            .Max();
        if (s.Json)
        {
            foreach (var (when, p) in probes)
            {
                Console.WriteLine(
                    JsonSerializer.Serialize(
                        new
                        {
                            what = "fma-peak",
                            threads,
                            isa,
                            when,
                            bits = p.Bits,
                            chainsPerThread = FmaPeakProbe.Chains,
                            gflops = p.Gflops,
                            gemmKernel = p.Bits == kernelBits,
                            nominalGflops = peak,
                            nominalFormula = formula,
                        }
                    )
                );
            }
            foreach (var r in results)
            {
                Console.WriteLine(
                    JsonSerializer.Serialize(
                        new
                        {
                            what = "gemm",
                            threads,
                            isa,
                            shape = r.Shape.Name,
                            m = r.Shape.M,
                            n = r.Shape.N,
                            k = r.Shape.K,
                            product = r.Product,
                            ms = r.Seconds * 1e3,
                            gflops = r.Gflops,
                            peakGflops = peak,
                            fractionOfPeak = r.Gflops / peak,
                            measuredPeakGflops = Known(measured),
                            fractionOfMeasuredPeak = Known(r.Gflops / measured),
                            adjacentPeakGflops = Known(r.AdjacentPeakGflops),
                            fractionOfAdjacentPeak = Known(r.Gflops / r.AdjacentPeakGflops),
                            adjacentKernelCeilingGflops = Known(r.AdjacentKernelCeilingGflops),
                            fractionOfAdjacentKernelCeiling = Known(r.Gflops / r.AdjacentKernelCeilingGflops),
                            cpuMs = r.CpuSeconds * 1e3,
                            gflopsPerCore = r.GflopsPerCpu,
                            fractionOfCorePeak = r.GflopsPerCpu / (peak / threads),
                        }
                    )
                );
            }
            return;
        }
        AnsiConsole.MarkupLine(Markup.Escape($"FMA peak, nominal: {formula}"));
        foreach (var (when, p) in probes)
        {
            string use = p.Bits == kernelBits ? " (the GEMM kernel's width)" : "";
            AnsiConsole.MarkupLine(
                Markup.Escape(
                    string.Create(
                        CultureInfo.InvariantCulture,
                        $"FMA peak, measured {when} the GEMM: {p.Bits}-bit, {threads} threads x {FmaPeakProbe.Chains} "
                            + $"register chains = {p.Gflops:F1} GFLOP/s ({p.Gflops / peak:P0} of nominal){use}"
                    )
                )
            );
        }
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"\"of measured\": against {measured:F1} GFLOP/s, the higher"
                )
            )
        );
        var table = new Table().Border(TableBorder.Rounded);
        foreach (string c in new[] { "shape (M x N x K)", "product" })
            table.AddColumn(c);
        foreach (
            string c in new[]
            {
                "time (ms)",
                "GFLOP/s",
                "of nominal",
                "of measured",
                "adjacent peak",
                "of adjacent",
                "kernel ceiling",
                "of ceiling",
                "CPU ms",
                "GFLOP/CPU-s",
                "of core nominal",
            }
        )
            table.AddColumn(new TableColumn(c).RightAligned());
        foreach (var r in results)
        {
            table.AddRow(
                Markup.Escape(r.Shape.Name),
                Markup.Escape(r.Product),
                $"{r.Seconds * 1e3:F2}",
                $"{r.Gflops:F1}",
                $"{r.Gflops / peak:P0}",
                Cell(r.Gflops / measured, "P0"),
                Cell(r.AdjacentPeakGflops, "F1"),
                Cell(r.Gflops / r.AdjacentPeakGflops, "P0"),
                Cell(r.AdjacentKernelCeilingGflops, "F1"),
                Cell(r.Gflops / r.AdjacentKernelCeilingGflops, "P0"),
                $"{r.CpuSeconds * 1e3:F2}",
                $"{r.GflopsPerCpu:F1}",
                $"{r.GflopsPerCpu / (peak / threads):P0}"
            );
        }
        AnsiConsole.Write(table);
    }

    /// <summary>A figure for JSON: null where it was not measured (NaN, which also carries through a ratio).</summary>
    private static double? Known(double value) => double.IsNaN(value) ? null : value;

    /// <summary>A figure for the table in <paramref name="format"/>: "-" where it was not measured (NaN).</summary>
    private static string Cell(double value, string format) =>
        double.IsNaN(value) ? "-" : value.ToString(format, CultureInfo.CurrentCulture);

    private static void Exchange(CpuBenchSettings s, int threads)
    {
        var results = s
            .WorldSizes.Select(w => InProcessExchangeBenchmark.Run(w, (long)s.MiB << 20, s.Warmup, s.Repeats))
            .ToList();
        if (s.Json)
        {
            foreach (var r in results)
            {
                Console.WriteLine(
                    JsonSerializer.Serialize(
                        new
                        {
                            what = "exchange",
                            threads,
                            world = r.World,
                            bytesPerRank = r.BytesPerRank,
                            exchangeMs = r.ExchangeSeconds * 1e3,
                            exchangeGBs = r.Bytes / r.ExchangeSeconds / 1e9,
                            copyMs = r.CopySeconds * 1e3,
                            copyGBs = r.Bytes / r.CopySeconds / 1e9,
                            fractionOfCopy = r.CopySeconds / r.ExchangeSeconds,
                        }
                    )
                );
            }
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("world");
        foreach (string c in new[] { "MB per rank", "all-to-all-v (ms)", "GB/s", "copy (ms)", "copy GB/s", "of copy" })
        {
            table.AddColumn(new TableColumn(c).RightAligned());
        }
        foreach (var r in results)
        {
            table.AddRow(
                $"{r.World}",
                $"{r.BytesPerRank / 1e6:F0}",
                $"{r.ExchangeSeconds * 1e3:F2}",
                $"{r.Bytes / r.ExchangeSeconds / 1e9:F2}",
                $"{r.CopySeconds * 1e3:F2}",
                $"{r.Bytes / r.CopySeconds / 1e9:F2}",
                $"{r.CopySeconds / r.ExchangeSeconds:P0}"
            );
        }
        AnsiConsole.Write(table);
    }

    /// <summary>The measured FMA rate at each vector width this machine has, on <paramref name="threads"/>
    /// threads.</summary>
    private static List<FmaPeakProbe.Result> Probe(int threads, int rounds) =>
        new[] { 512, 256 }
            .Select(bits => FmaPeakProbe.Measure(bits, threads, rounds))
            .OfType<FmaPeakProbe.Result>()
            .ToList();

    /// <summary>The first core's clock from /proc/cpuinfo, in GHz; null where there is none.</summary>
    private static double? CpuGhz()
    {
        const string path = "/proc/cpuinfo";
        if (!File.Exists(path))
            return null;
        foreach (string line in File.ReadLines(path))
        {
            if (!line.StartsWith("cpu MHz", StringComparison.Ordinal))
                continue;
            string value = line[(line.IndexOf(':') + 1)..].Trim();
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double mhz))
                return mhz / 1000;
        }
        return null;
    }
}
