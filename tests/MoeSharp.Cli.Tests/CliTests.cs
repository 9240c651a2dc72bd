using System.Runtime.Intrinsics;
using System.Text.Json;
using MoeSharp.Cli;
using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Tests.Dispatch;
using Spectre.Console;

namespace MoeSharp.Tests.Cli;

/// <summary>The console is process-wide: every test that runs the CLI is in this one non-parallel collection.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "Console";
}

/// <summary>
/// The <c>moe</c> command line through <see cref="CliApp.Run"/>: exit codes 0 / 1 / 2 and what it prints.
/// </summary>
[Collection(ConsoleCollection.Name)]
public class CliTests
{
    internal sealed record CliResult(int ExitCode, string Out, string Error)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{Out}\nstderr:\n{Error}";
    }

    /// <summary>Runs the CLI with stdout and stderr captured (<see cref="CliInvoker"/>).</summary>
    internal static CliResult Invoke(params string[] args)
    {
        CliOutcome outcome = CliInvoker.Invoke(args);
        return new CliResult(outcome.ExitCode, outcome.Out, outcome.Error);
    }

    internal static void AssertUsageError(CliResult result)
    {
        Assert.True(result.ExitCode == 2, result.ToString());
        string line = Assert.Single(
            result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        );
        Assert.StartsWith("moe: ", line);
        Assert.DoesNotContain("   at ", result.Error);
    }

    [Theory]
    [InlineData(
        "run",
        "--world",
        "4",
        "--sp",
        "2",
        "--tokens",
        "37",
        "--dim",
        "5",
        "--experts",
        "8",
        "--top-k",
        "3",
        "--align",
        "4",
        "--score",
        "before"
    )]
    [InlineData("run", "--world", "2", "--sp", "1", "--tokens", "0", "--dim", "3", "--experts", "4", "--top-k", "2")]
    [InlineData(
        "run",
        "--world",
        "8",
        "--sp",
        "4",
        "--tokens",
        "4097",
        "--sharding",
        "balanced",
        "--layout",
        "sharded",
        "--dim",
        "16"
    )]
    [InlineData("run", "--tokens", "3", "--sp", "8", "--world", "8")]
    [InlineData(
        "run",
        "--device",
        "ilgpu-cpu",
        "--world",
        "4",
        "--sp",
        "2",
        "--tokens",
        "61",
        "--dim",
        "8",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--align",
        "4"
    )]
    public void Run_Verifies_AndExits0(params string[] args)
    {
        CliResult result = Invoke(args);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("verified:", result.Out);
        Assert.DoesNotContain("NOT verified", result.Out);
        Assert.Equal("", result.Error);
    }

    [Fact]
    public void VerifyGolden_OnIlgpuCpu_PassesTheDispatchFiles()
    {
        string[] dispatchFiles = GoldenFiles
            .SafetensorsFiles()
            .Where(f => !SafetensorsFile.Read(f).Metadata.ContainsKey("kind"))
            .ToArray();
        CliResult result = Invoke(["verify-golden", "--device", "ilgpu-cpu", .. dispatchFiles]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"{dispatchFiles.Length} passed, 0 failed", result.Out);
        Assert.Contains("(on ilgpu-cpu)", result.Out);
    }

    [Fact]
    public void VerifyGolden_OnIlgpuCpu_RunsTheLayerFilesWithTheLayerOnTheDevice()
    {
        string[] layerFiles = GoldenFiles
            .SafetensorsFiles()
            .Where(f => SafetensorsFile.Read(f).Metadata.ContainsKey("kind"))
            .ToArray();
        CliResult result = Invoke(["verify-golden", "--device", "ilgpu-cpu", .. layerFiles]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"{layerFiles.Length} passed, 0 failed", result.Out);
        Assert.Contains("layer on ilgpu-cpu", result.Out);
    }

    [Theory]
    [InlineData("on ilgpu-cpu", "--world", "2")]
    [InlineData("bfloat16 product inputs", "--gemm-dtype", "bf16")]
    public void Train_OnIlgpuCpu_RunsAndTheLossFalls(string header, params string[] options)
    {
        CliResult result = Invoke([
            "train",
            "--device",
            "ilgpu-cpu",
            "--steps",
            "30",
            "--log-every",
            "100",
            .. options,
        ]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(header, result.Out);
        Assert.Contains(": fell from", result.Out);
    }

    [Fact]
    public void Train_Profile_PrintsEveryKernelsTimePerStep()
    {
        CliResult result = Invoke([
            "train",
            "--device",
            "ilgpu-cpu",
            "--steps",
            "3",
            "--log-every",
            "100",
            "--profile",
        ]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("kernel profile on rank 0, per step over steps 2-3", result.Out);
        // The layer's grouped products and the dispatcher's gather each appear with their calls per step.
        Assert.Matches(@"layer GroupedMatMulTransposeB\s+[0-9.]+ ms\s+[0-9.]+ %\s+6\.0 calls", result.Out);
        Assert.Contains("dispatch ScatterTokenRows", result.Out);
    }

    [Fact]
    public void Train_Profile_OnTheHost_TimesTheManagedKernels()
    {
        CliResult result = Invoke(["train", "--steps", "3", "--log-every", "100", "--profile"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("kernel profile on rank 0, per step over steps 2-3", result.Out);
        Assert.Matches(@"layer GroupedMatMulTransposeB\s+[0-9.]+ ms\s+[0-9.]+ %\s+6\.0 calls", result.Out);
        Assert.Contains("layer AdamWStep", result.Out);
    }

    [Fact]
    public void BenchCpu_Gemm_ReportsEveryProductAgainstTheNominalAndTheMeasuredPeak()
    {
        CliResult result = Invoke([
            "bench-cpu",
            "--what",
            "gemm",
            "--threads",
            "1",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--probe-rounds",
            "1",
            "--ghz",
            "2",
            "--json",
        ]);
        Assert.True(result.ExitCode == 0, result.ToString());
        string[] lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] gemm = lines.Where(l => l.Contains("\"what\":\"gemm\"", StringComparison.Ordinal)).ToArray();
        string[] probes = lines.Where(l => l.Contains("\"what\":\"fma-peak\"", StringComparison.Ordinal)).ToArray();
        // Three products on 1024³, one expert of each layer shape, and all 16 experts of each (grouped).
        Assert.Equal(15, gemm.Length);
        // 1 thread x 2 GHz x 2 FMA units x 8 lanes x 2 = 64 GFLOP/s.
        Assert.All(gemm, l => Assert.Contains("\"peakGflops\":64", l));
        // The measured peak: one line per vector width this machine has in hardware, before and after the GEMM; the
        // higher of the two at the kernel's width is the one the GEMM rows are measured against.
        Assert.Equal(
            2 * ((Vector512.IsHardwareAccelerated ? 1 : 0) + (Vector256.IsHardwareAccelerated ? 1 : 0)),
            probes.Length
        );
        JsonElement[] kernelProbes = probes
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Where(p => p.GetProperty("gemmKernel").GetBoolean())
            .ToArray();
        Assert.Equal(["before", "after"], kernelProbes.Select(p => p.GetProperty("when").GetString()));
        double kernelPeak = kernelProbes.Max(p => p.GetProperty("gflops").GetDouble());
        Assert.True(kernelPeak > 0, probes[0]);
        Assert.All(
            gemm,
            l =>
                Assert.Equal(
                    kernelPeak,
                    JsonDocument.Parse(l).RootElement.GetProperty("measuredPeakGflops").GetDouble()
                )
        );
    }

    [Fact]
    public void Run_WithoutOptions_RunsTheEmbeddedDefaults()
    {
        CliResult result = Invoke("run");
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("T = 7", result.Out);
        Assert.Contains("T = 4096", result.Out);
        Assert.Contains("verified:", result.Out);
    }

    [Theory]
    [InlineData("run", "--sp", "3", "--world", "4")]
    [InlineData("run", "--sharding", "foo")]
    [InlineData("run", "--layout", "diagonal")]
    [InlineData("run", "--score", "during")]
    [InlineData("run", "--world", "0")]
    [InlineData("run", "--tokens", "-1")]
    [InlineData("run", "--align", "0")]
    [InlineData("run", "--world", "4", "--experts", "6")]
    [InlineData("run", "--experts", "8", "--top-k", "9")]
    [InlineData("run", "--world", "abc")]
    [InlineData("run", "--no-such-option", "1")]
    [InlineData("run", "--tokens", "8", "--bogus")]
    [InlineData("bench", "--repeats", "0")]
    [InlineData("bench", "--world", "3", "--experts", "8")]
    [InlineData("bench", "--no-such-option")]
    [InlineData("bench", "--gemm")]
    [InlineData("bench", "--profile")]
    [InlineData("bench", "--preset", "llama")]
    [InlineData("run", "--device", "tpu")]
    [InlineData("train", "--device", "tpu")]
    [InlineData("train", "--gpus", "2")]
    [InlineData("train", "--gemm-dtype", "bf16")]
    [InlineData("bench-cpu", "--threads", "0")]
    [InlineData("bench-cpu", "--what", "copy")]
    [InlineData("bench-cpu", "--world", "1")]
    [InlineData("bench-cpu", "--probe-rounds", "0")]
    [InlineData("train", "--device", "ilgpu-cpu", "--gemm-dtype", "fp8")]
    [InlineData("run", "--gpus", "2")]
    [InlineData("run", "--device", "cuda", "--gpus", "0")]
    [InlineData("no-such-command")]
    public void BadOptions_Exit2_WithOneLineOnStderr(params string[] args)
    {
        AssertUsageError(Invoke(args));
    }

    [Fact]
    public void VerifyGolden_MissingFile_Exits2()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"moesharp-missing-{Guid.NewGuid():N}.safetensors");
        CliResult result = Invoke("verify-golden", missing);
        Assert.True(result.ExitCode == 2, result.ToString());
    }

    [Fact]
    public void VerifyGolden_TheWholeGoldenFolder_Exits0_PassingBothKinds()
    {
        IReadOnlyList<string> files = GoldenFiles.SafetensorsFiles();
        CliResult result = Invoke(["verify-golden", .. files]);
        Assert.True(result.ExitCode == 0, result.ToString());
        int known = files.Count(f => SafetensorsFile.Read(f).Metadata.GetValueOrDefault("kind") is null or "moe_layer");
        Assert.Contains($"{known} passed, 0 failed, 0 skipped, {files.Count - known} not applicable", result.Out);
    }

    [Fact]
    public void VerifyGolden_WithoutFiles_ReplaysTheBundledCopyOfEveryGoldenFile()
    {
        IReadOnlyList<string> files = GoldenFiles.SafetensorsFiles();
        CliResult result = Invoke("verify-golden");
        Assert.True(result.ExitCode == 0, result.ToString());
        foreach (string name in files.Select(f => Path.GetFileName(f)))
            Assert.Contains($"PASS {name}", result.Out);
        Assert.Contains($"{files.Count} passed, 0 failed", result.Out);
    }

    [Fact]
    public void VerifyGolden_UnseenFilePasses_AndACorruptedCopyFails()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-cli-golden-").FullName;
        try
        {
            string path = Path.Combine(dir, "unseen.safetensors");
            NaiveGolden.WriteRandom(path, seed: 5);
            CliResult ok = Invoke("verify-golden", path);
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.Contains("PASS unseen.safetensors", ok.Out);

            // Flip the lowest mantissa bit of one float of routed.r1.
            SafetensorsContent file = SafetensorsFile.Read(path);
            var tensors = file.ToDictionary(p => p.Key, p => p.Value.Clone());
            Tensor routed = tensors["routed.r1"];
            Assert.True(routed.ElementCount > 0, "the generated case gives rank 1 no rows; pick another seed");
            int index = routed.ElementCount / 2;
            Span<float> values = routed.AsSpan<float>();
            values[index] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(values[index]) ^ 1);
            string corrupted = Path.Combine(dir, "corrupted.safetensors");
            SafetensorsFile.Write(corrupted, file.Names.Select(n => KeyValuePair.Create(n, tensors[n])), file.Metadata);

            CliResult bad = Invoke("verify-golden", path, corrupted);
            Assert.True(bad.ExitCode == 1, bad.ToString());
            Assert.Contains("PASS unseen.safetensors", bad.Out);
            Assert.Contains("FAIL corrupted.safetensors", bad.Out);
            Assert.Contains("routed.r1", bad.Out);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Bench_Json_Exits0_AndPrintsTimes()
    {
        CliResult result = Invoke(
            "bench",
            "--tokens",
            "64",
            "--dim",
            "16",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--json"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        // One moesharp-metrics/1 record per measurement (docs/metrics.md).
        JsonElement[] records = result
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToArray();
        JsonElement Kind(string kind) => records.Single(r => r.GetProperty("kind").GetString() == kind);
        Assert.True(Kind("dispatch").GetProperty("ms").GetDouble() >= 0);
        Assert.True(Kind("combine").GetProperty("ms").GetDouble() >= 0);
        Assert.All(records, r => Assert.Equal(64, r.GetProperty("tokens").GetInt32()));
    }

    [Fact]
    public void Bench_MultiRankTable_Exits0()
    {
        CliResult result = Invoke(
            "bench",
            "--world",
            "2",
            "--tokens",
            "32",
            "--dim",
            "8",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("dispatch + combine", result.Out);
    }
}
