using System.Globalization;
using MoeSharp.Collectives;
using MoeSharp.Cuda;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Replays a golden file of the dispatch kind (<c>shared/golden/README.md</c>, kind 1) through the
/// dispatcher and compares every tensor bitwise; then replays it with balanced sharding and the sharded
/// layout and checks the final outputs are bitwise the same. Each rank checks its own tensors, so the same
/// code runs on in-process ranks and on MPI processes.
/// </summary>
public static class GoldenDispatchReplay
{
    /// <summary>True when the file's metadata marks the dispatch kind (no <c>kind</c> entry).</summary>
    public static bool Applies(SafetensorsContent file) => !file.Metadata.ContainsKey("kind");

    /// <summary>The problem the file describes: world, SP size, configuration and each group's inputs.</summary>
    /// <exception cref="InvalidDataException">Metadata or tensors are missing or inconsistent.</exception>
    public static DispatchCase ReadCase(SafetensorsContent file)
    {
        int world = Int(file, "world"),
            sp = Int(file, "sp"),
            experts = Int(file, "experts"),
            topK = Int(file, "top_k");
        if (file.Metadata.TryGetValue("ep", out string? ep) && ep != world.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidDataException(
                $"{file.SourceName}: metadata ep = {ep} differs from world = {world}; only EP = world is defined"
            );
        }
        if (world < 1 || sp < 1 || world % sp != 0)
        {
            throw new InvalidDataException($"{file.SourceName}: metadata sp = {sp} must divide world = {world}");
        }
        GoldenDispatchMetadata.Check(file, world, sp, experts, topK);
        var config = new TokenDispatcherConfig(experts, topK)
        {
            ScoreBeforeExperts = Bool(file, "score_before_experts"),
            CheckReplicatedInputs = true,
        };
        var groups = new GroupInputs[world / sp];
        for (int g = 0; g < groups.Length; g++)
        {
            groups[g] = new GroupInputs(file.Get($"x.g{g}"), file.Get($"scores.g{g}"), file.Get($"ids.g{g}"));
        }
        return new DispatchCase(world, sp, config, groups);
    }

    /// <summary>
    /// Replays the file on in-process ranks; returns null when everything matches, else the first mismatch.
    /// </summary>
    public static string? Replay(SafetensorsContent file, TimeSpan? timeout = null, ComputeOptions? compute = null)
    {
        DispatchCase seed = ReadCase(file);
        string?[] perRank = InProcessWorld.Run(seed.World, world => CheckRank(world, file, seed, compute), timeout);
        return perRank.FirstOrDefault(m => m is not null);
    }

    /// <summary>
    /// This rank's part of the replay on <paramref name="world"/> (of the file's world size): its routed rows,
    /// counts and combine output, and its share of each group's final output under the seed configuration and
    /// the balanced/sharded variants. Returns this rank's first mismatch, or null.
    /// </summary>
    public static string? CheckRank(
        IProcessGroup world,
        SafetensorsContent file,
        DispatchCase seed,
        ComputeOptions? compute = null
    )
    {
        int r = world.Rank,
            group = r / seed.Sp,
            spRank = r % seed.Sp;
        using DeviceRank? device = (compute ?? ComputeOptions.Host).CreateRank(world);
        RankOutcome outcome = DispatchWorldRunner.RunRank(world, seed, device);
        Tensor expectedFinal = file.Get($"final.g{group}");
        string? mismatch =
            TensorComparison.FirstBitwiseMismatch($"routed.r{r}", file.Get($"routed.r{r}"), outcome.Routed)
            ?? TensorComparison.FirstBitwiseMismatch(
                $"counts.r{r}",
                file.Get($"counts.r{r}"),
                Tensor.FromArray(
                    outcome.Metadata.TokensPerLocalExpert.ToArray(),
                    outcome.Metadata.TokensPerLocalExpert.Length
                )
            )
            ?? TensorComparison.FirstBitwiseMismatch($"out.r{r}", file.Get($"out.r{r}"), outcome.Output)
            ?? TensorComparison.FirstBitwiseMismatch($"final.g{group}", expectedFinal, outcome.Final);

        // Beyond the reference: no padding and no replication must give the same bits. Every rank runs every
        // variant (they are collectives) even after a mismatch.
        var variants = new (string Name, TokenDispatcherConfig Config)[]
        {
            ("balanced sharding", seed.Config with { Sharding = SpShardingPolicy.Balanced }),
            ("sharded layout", seed.Config with { Layout = SequenceLayout.Sharded }),
            (
                "balanced sharding, sharded layout",
                seed.Config with
                {
                    Sharding = SpShardingPolicy.Balanced,
                    Layout = SequenceLayout.Sharded,
                }
            ),
        };
        foreach (var (name, config) in variants)
        {
            RankOutcome variant = DispatchWorldRunner.RunRank(world, seed with { Config = config }, device);
            Tensor expected = expectedFinal;
            if (config.Layout == SequenceLayout.Sharded)
            {
                SequenceShard shard = SequenceShard.For(config.Sharding, expectedFinal.Rows, seed.Sp, spRank);
                expected = SliceRows(expectedFinal, shard.Start, shard.RealRows);
            }
            mismatch ??= TensorComparison.FirstBitwiseMismatch(
                $"final.g{group} ({name}, rank {r})",
                expected,
                variant.Final
            );
        }
        return mismatch;
    }

    private static Tensor SliceRows(Tensor t, int start, int rows)
    {
        int d = t.RowLength;
        var slice = Tensor.Uninitialized(DType.Float32, rows, d);
        t.AsSpan<float>().Slice(start * d, rows * d).CopyTo(slice.AsSpan<float>());
        return slice;
    }

    private static int Int(SafetensorsContent file, string key)
    {
        string text = Text(file, key);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
        {
            throw new InvalidDataException($"{file.SourceName}: metadata {key} = '{text}' is not an integer");
        }
        return value;
    }

    private static bool Bool(SafetensorsContent file, string key)
    {
        string text = Text(file, key);
        return text switch
        {
            "true" or "True" or "1" => true,
            "false" or "False" or "0" => false,
            _ => throw new InvalidDataException($"{file.SourceName}: metadata {key} = '{text}' is not true or false"),
        };
    }

    private static string Text(SafetensorsContent file, string key) =>
        file.Metadata.TryGetValue(key, out string? text)
            ? text
            : throw new InvalidDataException($"{file.SourceName}: metadata has no '{key}' entry");
}
