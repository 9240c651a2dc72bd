using System.Text.Json;
using MoeSharp.Tensors;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// <c>moe train</c>: <c>--metrics</c>, <c>--save</c>/<c>--load</c>, the router options and the output checks.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class CliTrainConventionsTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Metrics_WritesOneJsonObjectPerStep()
    {
        string metrics = Path.Combine(_dir, "m.jsonl");
        CliOutcome result = Invoke(["train", "--steps", "5", "--metrics", metrics, .. SmallTrain]);
        Assert.True(result.ExitCode == 0, result.ToString());

        JsonElement[] lines = ReadLines(metrics);
        Assert.Equal(5, lines.Length);
        for (int i = 0; i < 5; i++)
        {
            JsonElement line = lines[i];
            Assert.Equal("moesharp-metrics/1", line.GetProperty("schema").GetString());
            Assert.Equal("train", line.GetProperty("command").GetString());
            Assert.Equal("step", line.GetProperty("event").GetString());
            Assert.Equal(i + 1, line.GetProperty("step").GetInt32());
            Assert.True(line.GetProperty("ms").GetDouble() > 0);
            Assert.Equal(4, line.GetProperty("tokens_per_expert").GetArrayLength());
            Assert.Equal(8, line.GetProperty("dim").GetInt32());
            // The value and the bits agree, and the console printed the same bits.
            double loss = line.GetProperty("loss").GetDouble();
            string bits = line.GetProperty("loss_bits").GetString()!;
            Assert.Equal($"0x{BitConverter.DoubleToInt64Bits(loss):X16}", bits);
        }
        Assert.Contains(lines[4].GetProperty("loss_bits").GetString()!, result.Out);
    }

    [Fact]
    public void Load_ACheckpointHoldingANaN_NamesTheFileAndTensor_NotTheLearningRate()
    {
        string checkpoint = Path.Combine(_dir, "ck");
        Assert.Equal(0, Invoke(["train", "--steps", "2", "--save", checkpoint, .. SmallTrain]).ExitCode);
        string layer = Path.Combine(checkpoint, "layer.safetensors");
        SafetensorsContent saved = SafetensorsFile.Read(layer);
        saved.Get("router.gate.weight").AsSpan<float>()[5] = float.NaN;
        SafetensorsFile.Write(layer, saved.Names.Select(n => KeyValuePair.Create(n, saved.Get(n))), saved.Metadata);

        // It was "--lr 0.003: training diverged at step 3 ('router.gate.weight' is no longer finite)".
        string line = AssertUsageError(Invoke(["train", "--steps", "4", "--load", checkpoint, .. SmallTrain]));
        Assert.EndsWith(
            $"{layer}: 'router.gate.weight' holds NaN at element 5; a checkpoint to resume from holds finite values",
            line
        );
    }

    [Theory]
    [InlineData("1e30", "the loss is NaN")] // the loss turns first
    [InlineData("3e38", "'router.gate.weight' is no longer finite")] // the router's scores fail first
    public void Divergence_NamesTheLearningRate_AndSavesNothing(string lr, string what)
    {
        string checkpoint = Path.Combine(_dir, "ck");
        CliOutcome result = Invoke(["train", "--steps", "5", "--lr", lr, "--save", checkpoint, .. SmallTrain]);
        string line = AssertUsageError(result);
        Assert.Contains("training diverged at step 2", line);
        Assert.Contains(what, line);
        Assert.Contains("try a smaller --lr", line);
        Assert.False(Directory.Exists(checkpoint));
    }

    [Theory]
    [InlineData("1")]
    [InlineData("2")]
    public void SaveThenLoad_GivesTheUninterruptedLossesBitwise(string resumeWorld)
    {
        string whole = Path.Combine(_dir, "whole.jsonl"),
            resumed = Path.Combine(_dir, "resumed.jsonl"),
            checkpoint = Path.Combine(_dir, "ck");
        Assert.Equal(0, Invoke(["train", "--steps", "9", "--metrics", whole, .. SmallTrain]).ExitCode);
        CliOutcome saved = Invoke(["train", "--steps", "4", "--save", checkpoint, .. SmallTrain]);
        Assert.True(saved.ExitCode == 0, saved.ToString());
        Assert.True(File.Exists(Path.Combine(checkpoint, "layer.safetensors")));
        Assert.True(File.Exists(Path.Combine(checkpoint, "trainer.safetensors")));

        // Resumed on the same world, or on two ranks with a sharded layout: every expert is in the checkpoint.
        string[] layout = resumeWorld == "1" ? [] : ["--world", "2", "--sp", "2", "--layout", "sharded"];
        CliOutcome loaded = Invoke([
            "train",
            "--steps",
            "9",
            "--load",
            checkpoint,
            "--metrics",
            resumed,
            .. layout,
            .. SmallTrain,
        ]);
        Assert.True(loaded.ExitCode == 0, loaded.ToString());
        Assert.Contains("resuming after step 4", loaded.Out);

        string[] expected = ReadLines(whole).Skip(4).Select(Bits).ToArray();
        string[] actual = ReadLines(resumed).Select(Bits).ToArray();
        Assert.Equal(5, actual.Length);
        Assert.Equal(expected, actual);
        Assert.Equal([5, 6, 7, 8, 9], ReadLines(resumed).Select(l => l.GetProperty("step").GetInt32()));
    }

    [Fact]
    public void Load_RefusesAnotherShapeOrAFinishedRun()
    {
        string checkpoint = Path.Combine(_dir, "ck");
        Assert.Equal(0, Invoke(["train", "--steps", "2", "--save", checkpoint, .. SmallTrain]).ExitCode);

        string shape = AssertUsageError(
            Invoke(["train", "--steps", "4", "--load", checkpoint, .. SmallTrain, "--dim", "4"])
        );
        Assert.Contains("--dim 8", shape);
        Assert.Contains("--dim 4", shape);
        string router = AssertUsageError(
            Invoke(["train", "--steps", "4", "--load", checkpoint, "--score-func", "sigmoid", .. SmallTrain])
        );
        Assert.Contains("--score-func softmax", router);
        string batch = AssertUsageError(
            Invoke(["train", "--steps", "4", "--load", checkpoint, "--batch", "counter", .. SmallTrain])
        );
        Assert.Contains("--batch sequential", batch);
        string done = AssertUsageError(Invoke(["train", "--steps", "2", "--load", checkpoint, .. SmallTrain]));
        Assert.Contains("already at step 2", done);
        string missing = AssertUsageError(Invoke(["train", "--load", Path.Combine(_dir, "none"), .. SmallTrain]));
        Assert.Contains("--load", missing);
    }

    [Fact]
    public void RouterOptions_ReachTheLayer()
    {
        string plain = Path.Combine(_dir, "plain.jsonl"),
            routed = Path.Combine(_dir, "routed.jsonl");
        Assert.Equal(0, Invoke(["train", "--steps", "3", "--metrics", plain, .. SmallTrain]).ExitCode);
        CliOutcome result = Invoke([
            "train",
            "--steps",
            "3",
            "--metrics",
            routed,
            "--score-func",
            "sigmoid",
            "--route-norm",
            "--route-scale",
            "2",
            "--expert-groups",
            "2",
            "--limited-groups",
            "1",
            "--top-k",
            "2",
            .. SmallTrain,
        ]);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("sigmoid scores, normalized, scale 2, 1 of 2 expert groups", result.Out);

        JsonElement first = ReadLines(routed)[0];
        Assert.Equal("sigmoid", first.GetProperty("score_func").GetString());
        Assert.True(first.GetProperty("route_norm").GetBoolean());
        Assert.Equal(2, first.GetProperty("expert_groups").GetInt32());
        // Node-limited routing to one group of two experts with top-2: each token uses both experts of one group,
        // so both groups' loads are even (expert 0 = expert 1, expert 2 = expert 3).
        int[] load = first.GetProperty("tokens_per_expert").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(load[0], load[1]);
        Assert.Equal(load[2], load[3]);
        Assert.NotEqual(Bits(ReadLines(plain)[0]), Bits(first));
    }

    [Theory]
    [InlineData("--limited-groups", "1")]
    [InlineData("--expert-groups", "3")]
    [InlineData("--score-func", "tanh")]
    [InlineData("--batch", "stream")]
    public void BadRouterOptions_AreOneLine(string option, string value)
    {
        string line = AssertUsageError(Invoke(["train", option, value, .. SmallTrain]));
        Assert.Contains(option, line);
    }

    [Fact]
    public void ExpertGroupsThatLeaveTooFewExperts_NameTheOptions()
    {
        string line = AssertUsageError(
            Invoke(["train", "--expert-groups", "2", "--limited-groups", "1", "--top-k", "3", .. SmallTrain])
        );
        Assert.Contains("--limited-groups 1", line);
        Assert.Contains("--top-k 3", line);
    }

    [Theory]
    [InlineData("--metrics", "no-such-dir/m.jsonl")]
    [InlineData("--plot", "no-such-dir/loss.png")]
    [InlineData("--save", "a-file/ck")]
    [InlineData("--save", "no-such-dir/deeper/ck")]
    [InlineData("--metrics", ".")]
    public void UnwritableOutputs_AreRefusedBeforeAnyWork(string option, string relative)
    {
        File.WriteAllText(Path.Combine(_dir, "a-file"), "");
        string path = Path.Combine(_dir, relative);
        CliOutcome result = Invoke(["train", "--steps", "1", option, path, .. SmallTrain]);
        string line = AssertUsageError(result);
        Assert.Contains(option, line);
        Assert.Contains(path, line);
        Assert.DoesNotContain("train:", result.Out); // nothing ran
    }

    [Fact]
    public void Plot_IsWritten()
    {
        string png = Path.Combine(_dir, "loss.png");
        CliOutcome result = Invoke(["train", "--steps", "4", "--plot", png, .. SmallTrain]);
        Assert.True(result.ExitCode == 0, result.ToString());
        byte[] header = File.ReadAllBytes(png)[..8];
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, header);
    }

    private static JsonElement[] ReadLines(string path) =>
        File.ReadAllLines(path)
            .Where(l => l.Length > 0)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone())
            .ToArray();

    private static string Bits(JsonElement line) => line.GetProperty("loss_bits").GetString()!;
}
