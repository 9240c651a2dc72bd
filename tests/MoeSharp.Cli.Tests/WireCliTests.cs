using System.Text.Json;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>--wire fp8</c> on run and bench: verified runs, the measured bytes ratio, the layer error, bad input.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class WireCliTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static JsonElement[] Records(string path) =>
        File.ReadAllLines(path).Select(l => JsonDocument.Parse(l).RootElement).ToArray();

    [Fact]
    public void Run_Fp8_IsVerifiedBitwise_AndSaysSoInItsMetrics()
    {
        string metrics = Path.Combine(_dir, "m.jsonl");
        CliOutcome result = Invoke(
            "run",
            "--wire",
            "fp8",
            "--world",
            "4",
            "--sp",
            "2",
            "--tokens",
            "37",
            "--dim",
            "130",
            "--experts",
            "8",
            "--top-k",
            "3",
            "--dtype",
            "bf16",
            "--layout",
            "sharded",
            "--align",
            "4",
            "--metrics",
            metrics
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("FP8 rows on the wire", result.Out);
        Assert.Contains("verified: bitwise identical", result.Out);
        JsonElement record = Assert.Single(Records(metrics));
        Assert.Equal("fp8", record.GetProperty("wire").GetString());
        Assert.True(record.GetProperty("verified").GetBoolean());
    }

    [Fact]
    public void Bench_Fp8_AtD7168_MeasuresAtMost053TimesTheBFloat16Bytes()
    {
        string metrics = Path.Combine(_dir, "b.jsonl");
        CliOutcome result = Invoke(
            "bench",
            "--wire",
            "fp8",
            "--world",
            "2",
            "--tokens",
            "8",
            "--dim",
            "7168",
            "--experts",
            "8",
            "--top-k",
            "2",
            "--dtype",
            "bf16",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--metrics",
            metrics
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("measured bytes ratio fp8 / bf16: 0.5156", result.Out);
        JsonElement[] records = Records(metrics);
        Assert.Equal(["bf16", "fp8"], records.Select(r => r.GetProperty("wire").GetString()));
        long bf16 = records[0].GetProperty("bytes").GetInt64(),
            fp8 = records[1].GetProperty("bytes").GetInt64();
        // 2 ranks × 8 tokens × K 2 rows: 14336 bytes each in bfloat16, 7392 in FP8.
        Assert.Equal(2 * 8 * 2 * 14336L, bf16);
        Assert.Equal(2 * 8 * 2 * 7392L, fp8);
        Assert.True(records[1].GetProperty("max_token_error").GetDouble() is > 0 and < 0.1);
    }

    [Fact]
    public void Bench_Fp8Layer_ReportsTheErrorOfBothInputKinds()
    {
        CliOutcome result = Invoke(
            "bench",
            "--wire",
            "fp8",
            "--layer",
            "--tokens",
            "16",
            "--dim",
            "256",
            "--hidden",
            "64",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--repeats",
            "1",
            "--json"
        );
        Assert.True(result.ExitCode == 0, result.ToString());
        JsonElement[] records = result
            .Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .ToArray();
        Assert.Equal(2, records.Length);
        foreach (JsonElement r in records)
        {
            Assert.Equal("wire_layer_error", r.GetProperty("kind").GetString());
            Assert.Equal(16, r.GetProperty("tokens_measured").GetInt32());
            Assert.True(r.GetProperty("max_token_error").GetDouble() is > 0 and < 0.2, r.ToString());
        }
    }

    [Theory]
    [InlineData("--wire 'fp9' is not native or fp8", "run", "--wire", "fp9")]
    [InlineData("--wire 'fp9' is not native or fp8", "bench", "--wire", "fp9")]
    [InlineData("--world 1 must be at least 2", "bench", "--wire", "fp8")]
    [InlineData("not with --device ilgpu-cpu", "bench", "--wire", "fp8", "--world", "2", "--device", "ilgpu-cpu")]
    [InlineData("--layer runs one rank", "bench", "--wire", "fp8", "--layer", "--world", "2")]
    // Two dispatchers' worth of 1.1e9 tokens: the refusal names the tokens given (2 × T wrapped to -2094967296).
    [InlineData(
        "(--world 2 --tokens 1100000000 --dim 8 --experts 2)",
        "bench",
        "--wire",
        "fp8",
        "--world",
        "2",
        "--tokens",
        "1100000000",
        "--dim",
        "8",
        "--experts",
        "2",
        "--top-k",
        "1"
    )]
    public void BadOptions_AreUsageErrors_NamingTheOption(string message, params string[] args)
    {
        string error = AssertUsageError(Invoke(args));
        Assert.Contains(message, error);
    }
}
