using System.Text.Json;
using MoeSharp.Cli;
using Spectre.Console;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>moe bench --layer</c> at a tiny shape: on the host and on ILGPU's CPU accelerator (the GPU code path).
/// </summary>
[Collection(ConsoleCollection.Name)]
public class LayerBenchCliTests
{
    private static (int Code, string Out, string Error) Invoke(params string[] args)
    {
        CliOutcome outcome = CliInvoker.Invoke(args);
        return (outcome.ExitCode, outcome.Out, outcome.Error);
    }

    [Theory]
    [InlineData("host")]
    [InlineData("ilgpu-cpu")]
    public void LayerBench_TimesEveryStageAndPhase(string device)
    {
        var (code, output, error) = Invoke(
            "bench",
            "--layer",
            "--device",
            device,
            "--tokens",
            "48",
            "--dim",
            "16",
            "--hidden",
            "24",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--json"
        );
        Assert.True(code == 0, $"exit {code}: {error}");
        using JsonDocument json = JsonDocument.Parse(output.Trim());
        JsonElement r = json.RootElement;
        Assert.Equal("layer", r.GetProperty("kind").GetString());
        Assert.Equal(device == "host" ? "f32" : "bf16", r.GetProperty("dtype").GetString());
        double forward = r.GetProperty("forward_ms").GetDouble(),
            backward = r.GetProperty("backward_ms").GetDouble();
        double optimizer = r.GetProperty("optimizer_ms").GetDouble();
        Assert.True(forward > 0 && backward > 0 && optimizer > 0, output);
        var phases = r.GetProperty("phases_ms").EnumerateObject().Select(p => p.Name).ToList();
        foreach (
            string phase in new[]
            {
                "forward router",
                "forward dispatch",
                "forward expert products",
                "forward SwiGLU",
                "forward combine",
                "backward expert products",
                "backward SwiGLU",
                "backward router",
                "optimizer optimizer",
            }
        )
        {
            Assert.Contains(phase, phases);
        }
        Assert.True(r.GetProperty("products_tflops").GetDouble() > 0, output);
        // No cuBLAS off CUDA: no dense reference.
        Assert.Equal(JsonValueKind.Null, r.GetProperty("dense_gemm_tflops").ValueKind);
    }

    [Theory]
    [InlineData("--layer", "--preset", "deepseek")]
    [InlineData("--layer", "--dtype", "bf16")]
    [InlineData("--layer", "--world", "2")]
    [InlineData("--layer", "--hidden", "0")]
    [InlineData("--layer", "--top-k", "9", "--experts", "8")]
    public void LayerBench_BadOptions_ExitTwoWithOneLine(params string[] args)
    {
        var (code, _, error) = Invoke(["bench", .. args]);
        Assert.True(code == 2, $"exit {code}: {error}");
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
}
