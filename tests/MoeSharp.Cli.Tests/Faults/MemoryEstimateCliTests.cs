using System.Globalization;
using System.Text.RegularExpressions;
using MoeSharp.Tests.Cli;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// Memory estimates that count what the commands really allocate: each refusal happens at validation (exit 2, one
/// line), so these tests never allocate the sizes they name. Where a figure is asserted, the sizes are chosen so that it
/// exceeds any machine's memory and a lower count (the bug) is told apart by its size.
/// </summary>
[Collection(ConsoleCollection.Name)]
public partial class MemoryEstimateCliTests
{
    private const double GiB = 1L << 30;

    [Fact]
    public void Train_InitialWeightsOfAllExperts_AreOneTensor_RefusedWhenTheyExceedAnArray()
    {
        // E·H·D = 2^31 (one local expert per rank of 64 MiB each); every rank draws all 64 experts, whose int
        // element count wrapped (an OverflowException at run time).
        string line = CliInvoker.AssertUsageError(
            CliInvoker.Invoke(Train("--world", "8", "--experts", "64", "--hidden", "8192", "--dim", "4096"))
        );
        Assert.StartsWith("moe: needs a tensor of 2147483648 elements, more than the 2147483591", line);
        Assert.Contains("--experts 64", line);
    }

    [Fact]
    public void Train_EveryInProcessRank_CountsTheInitialWeightsOfAllExperts()
    {
        // 512 ranks of one expert each, E·H·D = 2^30: each rank draws all experts' 3 × 4 GiB of weights.
        double needed = NeededBytes(
            CliInvoker.Invoke(Train("--world", "512", "--experts", "512", "--hidden", "2048", "--dim", "1024"))
        );
        Assert.True(needed >= 512 * 12 * GiB, $"{needed / GiB:F0} GiB");
    }

    [Fact]
    public void Train_Load_CountsTheWholeCheckpointOnEveryRank()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-memory-").FullName;
        try
        {
            string[] shape = ["--world", "512", "--experts", "512", "--hidden", "2048", "--dim", "1024"];
            double fresh = NeededBytes(CliInvoker.Invoke(Train(shape)));
            CliOutcome loaded = CliInvoker.Invoke(Train([.. shape, "--load", dir]));
            Assert.Contains("--load " + dir, CliInvoker.AssertUsageError(loaded));
            // Every rank reads all experts' weights and both AdamW moments: 3 × 12 GiB more per rank (to the
            // figure's one decimal).
            Assert.True(NeededBytes(loaded) - fresh >= 512 * 36 * GiB * 0.99, $"{fresh / GiB:F0} GiB fresh");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string[] Train(params string[] shape) =>
        ["train", .. shape, "--tokens", "512", "--top-k", "1", "--shared-hidden", "0", "--steps", "1"];

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
