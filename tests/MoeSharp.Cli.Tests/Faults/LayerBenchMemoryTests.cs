using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Faults;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// <c>moe bench --layer</c> (and with <c>--wire fp8</c>) checks the whole step's memory at validation. Each run is a
/// child <c>moe</c> process whose GC heap is capped at 512 MiB (<c>DOTNET_GCHeapHardLimit</c>, which the memory check
/// reads as the available memory), so the refusal does not depend on the machine and a run that is not refused cannot
/// allocate more than the cap: before the check it ran out of memory (exit 3) instead of exiting 2.
/// </summary>
public partial class LayerBenchMemoryTests
{
    private const long HeapLimit = 512L << 20;

    /// <summary>The layer's float32 parameters: E·(D + 3·H·D) × 4 bytes = 201 MB, each copy within the cap.</summary>
    private const double Weights = 8 * (1024 + 3 * 2048 * 1024) * 4.0;

    private static readonly string[] Shape =
    [
        "--tokens",
        "16",
        "--dim",
        "1024",
        "--hidden",
        "2048",
        "--experts",
        "8",
        "--top-k",
        "1",
        "--warmup",
        "0",
        "--repeats",
        "1",
    ];

    [Fact]
    public void LayerStep_CountsWeightsGradientsMomentsAndTheRandomWeights_RefusedAtValidation()
    {
        // The random weights, the layer's weights, gradients and AdamW's two moments: five copies, 1 GB.
        double needed = NeededBytes(RunMoe(["bench", "--layer", .. Shape]));
        Assert.True(needed >= 4.95 * Weights, $"{needed / 1e6:F0} MB");
    }

    [Fact]
    public void WireFp8Layer_CountsTheRandomWeightsAndBothLayers_RefusedAtValidation()
    {
        // The random weights and the native and FP8 layers loaded from them: three copies, 604 MB.
        double needed = NeededBytes(RunMoe(["bench", "--layer", "--wire", "fp8", .. Shape]));
        Assert.True(needed >= 2.95 * Weights, $"{needed / 1e6:F0} MB");
    }

    [Fact]
    public void OnCuda_TheDenseReferencesOperands_AreCountedOnTheDevice()
    {
        // T·K = 4096 rows, D 1024, H 2048: A 8 MiB and B 4 MiB in bfloat16, C 32 MiB in float32, rented after the step
        // from the pool that still holds its buffers. Without a GPU the device check cannot run, so the figure itself
        // is checked.
        var shape = new LayerBenchmark.Shape("t", Tokens: 2048, Dim: 1024, Hidden: 2048, Experts: 8, TopK: 2);
        long ilgpuCpu = CommandMemory.LayerBenchRankBytes(shape, bfloat16Products: true, DeviceKind.IlgpuCpu);
        long cuda = CommandMemory.LayerBenchRankBytes(shape, bfloat16Products: true, DeviceKind.Cuda);
        Assert.Equal((4096L * 1024 * 2) + (2048L * 1024 * 2) + (4096L * 2048 * 4), cuda - ilgpuCpu);
        Assert.True(CommandMemory.LayerBenchRankBytes(shape, true, DeviceKind.Host) < ilgpuCpu);
    }

    /// <summary>Runs <c>moe</c> with the capped heap; returns its exit code and stderr.</summary>
    private static (int Code, string Error) RunMoe(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moe.dll"));
        foreach (string a in args)
            start.ArgumentList.Add(a);
        start.Environment["DOTNET_GCHeapHardLimit"] = "0x" + HeapLimit.ToString("x", CultureInfo.InvariantCulture);
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        _ = output.Result;
        return (process.ExitCode, error);
    }

    /// <summary>The bytes of a host-memory refusal's "needs N GB of host memory" (exit 2, one line).</summary>
    private static double NeededBytes((int Code, string Error) result)
    {
        Assert.True(result.Code == 2, $"exit {result.Code}: {result.Error}");
        string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.EndsWith("(--layer --tokens 16 --dim 1024 --hidden 2048 --experts 8 --top-k 1)", line.TrimEnd());
        Match m = Needs().Match(line);
        Assert.True(m.Success, line);
        double unit = m.Groups[2].Value == "GB" ? 1e9 : 1e6;
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * unit;
    }

    [GeneratedRegex(@"^moe: needs ([\d.]+) ([GM]B) of host memory per process")]
    private static partial Regex Needs();
}
