using System.Globalization;
using System.Text.RegularExpressions;
using MoeSharp.Tests.Cli;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// Memory estimates that count what the commands really allocate: each refusal happens at validation (exit 2, one
/// line), so these tests never allocate the sizes they name. Where a figure is asserted, the sizes are chosen so that
/// it exceeds the memory of the machines these tests run on, and a lower count (the bug) is told apart by its size.
/// </summary>
[Collection(ConsoleCollection.Name)]
public partial class MemoryEstimateCliTests
{
    private const double GiB = 1L << 30;

    [Fact]
    public void Train_ACheckpoint_NeverHoldsAllExpertsAsOneTensor()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-memory-").FullName;
        try
        {
            // E·H·D = 2^32 over 512 ranks of one expert: a rank keeps the initial weights of its own expert only,
            // reads only its own expert of a checkpoint and saves in blocks, so a fresh, a loaded or a saving run is
            // refused for the batches' host memory (2.2 TB), not for a stacked [E, H, D] tensor past an array (a save
            // gathered all experts into one until stop 45).
            string[] shape = ["--world", "512", "--experts", "512", "--hidden", "4096", "--dim", "2048"];
            string[] batch = ["--tokens", "524288"];
            double fresh = NeededBytes(CliInvoker.Invoke(Train([.. shape, .. batch])));
            Assert.True(fresh >= 512 * 524288.0 * 4 * 2050, $"{fresh / GiB:F0} GiB");
            string[][] checkpoints =
            [
                ["--load", dir],
                ["--save", Path.Combine(dir, "saved")],
            ];
            foreach (string[] checkpoint in checkpoints)
            {
                double needed = NeededBytes(CliInvoker.Invoke(Train([.. shape, .. batch, .. checkpoint])));
                Assert.True(needed >= fresh, $"{checkpoint[0]}: {needed / GiB:F0} GiB");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Train_EveryInProcessRank_CountsTheInitialWeightsOfItsOwnExpertsOnly()
    {
        // 512 ranks of one expert each, E·H·D = 2^30: all experts' weights are 3 × 4 GiB, one expert's 24 MiB. Every
        // rank generates the 2^20 × D batch (4.3 GB; 2.2 TB in all), so the estimate is refused on any machine these
        // tests run on. Beyond the batches, each rank's rows and weights (the layer's four copies and the initial
        // weights of its own expert) come to well under 1 GiB; all experts' initial weights on every rank made it 12.
        double needed = NeededBytes(CliInvoker.Invoke(Train(BigTrain)));
        double batches = 512 * BigTrainBatchBytes;
        Assert.True(needed >= batches, $"{needed / GiB:F0} GiB");
        Assert.True(needed - batches < 512 * GiB, $"{(needed - batches) / GiB:F0} GiB beyond the batches");
    }

    [Fact]
    public void Train_LoadAndSave_CountTheRanksOwnExpertsOnly()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-memory-").FullName;
        try
        {
            // 256 ranks of one expert of 3 × 6144 × 1024 floats (72 MiB) and a small batch: each rank's layer (weights,
            // gradients, two moments) and initial weights come to about 5 × 72 MiB, 90 GiB in all.
            string[] shape =
            [
                "--world",
                "256",
                "--experts",
                "256",
                "--hidden",
                "6144",
                "--dim",
                "1024",
                "--tokens",
                "256",
            ];
            double expert = 3 * 6144 * 1024 * 4.0;
            double fresh = NeededBytes(CliInvoker.Invoke(Train(shape)));
            CliOutcome loaded = CliInvoker.Invoke(Train([.. shape, "--load", dir]));
            Assert.Contains("--load " + dir, CliInvoker.AssertUsageError(loaded));
            // Every rank reads its own expert's weights and both AdamW moments (and the gate): 3 × 72 MiB more.
            Assert.InRange(NeededBytes(loaded) - fresh, 256 * 3 * expert * 0.95, 256 * 3 * expert * 1.05);
            // Saving, every rank copies out its own expert's state and gathers in two 64 MiB blocks; it gathered all
            // 256 experts' weights and moments on every rank (3 × 18 GiB more) until stop 45.
            CliOutcome saved = CliInvoker.Invoke(Train([.. shape, "--save", Path.Combine(dir, "saved")]));
            double blocks = 2 * 64.0 * (1 << 20);
            Assert.InRange(
                NeededBytes(saved) - fresh,
                256 * ((3 * expert) + blocks) * 0.95,
                256 * ((3 * expert) + blocks) * 1.05
            );
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Run_CapacityMode_CountsTheSlots()
    {
        // f·N = 500000 × 4096 rows of slots per rank (2.048e9, within a tensor at D 1), over 64 in-process ranks:
        // the local, received and expert-major rows alone are 4 × 2.048e9 × 4 bytes on each.
        CliOutcome result = CliInvoker.Invoke(
            "run",
            "--world",
            "64",
            "--sp",
            "1",
            "--layout",
            "sharded",
            "--sharding",
            "balanced",
            "--tokens",
            "4096",
            "--dim",
            "1",
            "--experts",
            "64",
            "--top-k",
            "1",
            "--capacity-factor",
            "500000"
        );
        Assert.EndsWith("--capacity-factor 500000)", CliInvoker.AssertUsageError(result));
        double needed = NeededBytes(result);
        Assert.True(needed >= 64 * 2.048e9 * 16, $"{needed / GiB:F0} GiB");
    }

    [Fact]
    public void Bench_CapacityMode_CountsTheSlots()
    {
        // As above: the capacity-mode dispatcher's slots, next to the normal one it is timed against.
        CliOutcome result = CliInvoker.Invoke(
            "bench",
            "--world",
            "64",
            "--tokens",
            "4096",
            "--dim",
            "1",
            "--experts",
            "64",
            "--top-k",
            "1",
            "--capacity-factor",
            "500000"
        );
        Assert.EndsWith("--capacity-factor 500000)", CliInvoker.AssertUsageError(result));
        double needed = NeededBytes(result);
        Assert.True(needed >= 64 * 2.048e9 * 16, $"{needed / GiB:F0} GiB");
    }

    [Fact]
    public void Run_CapacityMode_ChecksTheDefaultCasesToo()
    {
        // The default cases fit in the normal mode; a factor of 10^6 gives them slots beyond any tensor.
        string line = CliInvoker.AssertUsageError(CliInvoker.Invoke("run", "--capacity-factor", "1000000"));
        Assert.StartsWith("moe: needs a tensor of ", line);
        Assert.EndsWith("--capacity-factor 1000000)", line);
    }

    [Fact]
    public void BenchUneven_IsCheckedLikeBench_TensorLimit()
    {
        // 2000007 tokens × D 4096 in one replicated input: an ArgumentOutOfRangeException inside a rank before.
        string line = CliInvoker.AssertUsageError(
            CliInvoker.Invoke(Uneven("--world", "2", "--tokens", "2000000", "--dim", "4096", "--experts", "2"))
        );
        Assert.StartsWith("moe: needs a tensor of ", line);
        Assert.EndsWith("(--world 2 --tokens 2000000 --dim 4096 --experts 2)", line);
    }

    [Fact]
    public void BenchUneven_IsCheckedLikeBench_HostMemory()
    {
        // 64 in-process ranks, each with its SP group's 2e9 tokens (rows of 4 bytes and 8 bytes of routing) twice.
        CliOutcome result = CliInvoker.Invoke(
            Uneven("--world", "64", "--tokens", "2000000000", "--dim", "1", "--experts", "64")
        );
        Assert.EndsWith("(--world 64 --tokens 2000000000 --dim 1 --experts 64)", CliInvoker.AssertUsageError(result));
        double needed = NeededBytes(result);
        Assert.True(needed >= 64 * 2e9 * 12 * 2, $"{needed / GiB:F0} GiB");
    }

    [Fact]
    public void BenchCpuExchange_CountsEveryRanksBuffers()
    {
        // The options' largest exchange: 256 ranks sending and receiving 1 GiB each, 512 GiB.
        CliOutcome result = CliInvoker.Invoke("bench-cpu", "--what", "exchange", "--world", "4,256", "--mib", "1024");
        Assert.EndsWith("(--world 256 --mib 1024)", CliInvoker.AssertUsageError(result));
        Assert.Equal(2 * 256 * GiB, NeededBytes(result), 0.001 * GiB * 512);
    }

    private static string[] Uneven(params string[] shape) => ["bench", "--uneven", .. shape, "--top-k", "1"];

    private static string[] Train(params string[] shape) =>
        ["train", .. shape, "--top-k", "1", "--shared-hidden", "0", "--steps", "1"];

    /// <summary>512 ranks of one expert [2048, 1024] each, and a batch of 2^20 tokens that every rank
    /// generates.</summary>
    private static readonly string[] BigTrain =
    [
        "--world",
        "512",
        "--experts",
        "512",
        "--hidden",
        "2048",
        "--dim",
        "1024",
        "--tokens",
        "1048576",
    ];

    /// <summary>One rank's copy of <see cref="BigTrain"/>'s batch and per-token losses: 2^20 × (D + 2)
    /// floats.</summary>
    private const double BigTrainBatchBytes = 1048576.0 * 4 * (1024 + 2);

    /// <summary>The bytes of a host-memory refusal's "needs N TB of host memory" (exit 2, one line).</summary>
    private static double NeededBytes(CliOutcome result)
    {
        string line = CliInvoker.AssertUsageError(result);
        Match m = Needs().Match(line);
        Assert.True(m.Success, line);
        double unit = m.Groups[2].Value switch
        {
            "TB" => 1e12,
            "GB" => 1e9,
            _ => 1e6,
        };
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * unit;
    }

    [GeneratedRegex(@"^moe: needs ([\d.]+) ([TGM]B) of host memory per process")]
    private static partial Regex Needs();
}
