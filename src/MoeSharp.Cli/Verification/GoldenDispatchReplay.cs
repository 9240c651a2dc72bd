using System.Globalization;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Verification;

/// <summary>
/// Replays a golden file of the dispatch kind (<c>shared/golden/README.md</c>, kind 1) through the
/// dispatcher on in-process ranks and compares every tensor bitwise; then replays it with balanced sharding
/// and the sharded layout and checks the final outputs are bitwise the same.
/// </summary>
internal static class GoldenDispatchReplay
{
    /// <summary>True when the file's metadata marks the dispatch kind (no <c>kind</c> entry).</summary>
    public static bool Applies(SafetensorsContent file) => !file.Metadata.ContainsKey("kind");

    /// <summary>The problem the file describes: world, SP size, configuration and each group's inputs.</summary>
    /// <exception cref="InvalidDataException">Metadata or tensors are missing or inconsistent.</exception>
    public static DispatchCase ReadCase(SafetensorsContent file)
    {
        int world = Int(file, "world"), sp = Int(file, "sp"), experts = Int(file, "experts"), topK = Int(file, "top_k");
        if (file.Metadata.TryGetValue("ep", out string? ep) && ep != world.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidDataException($"{file.SourceName}: metadata ep = {ep} differs from world = {world}; only EP = world is defined");
        }
        if (world < 1 || sp < 1 || world % sp != 0)
        {
            throw new InvalidDataException($"{file.SourceName}: metadata sp = {sp} must divide world = {world}");
        }
        var config = new TokenDispatcherConfig(experts, topK) { ScoreBeforeExperts = Bool(file, "score_before_experts") };
        var groups = new GroupInputs[world / sp];
        for (int g = 0; g < groups.Length; g++)
        {
            groups[g] = new GroupInputs(file.Get($"x.g{g}"), file.Get($"scores.g{g}"), file.Get($"ids.g{g}"));
        }
        return new DispatchCase(world, sp, config, groups);
    }

    /// <summary>Replays the file; returns null when everything matches, else the first mismatch.</summary>
    public static string? Replay(SafetensorsContent file, TimeSpan? timeout = null)
    {
        DispatchCase seed = ReadCase(file);
        RankOutcome[] outcomes = DispatchWorldRunner.RunInProcess(seed, timeout);
        for (int r = 0; r < seed.World; r++)
        {
            string? mismatch =
                TensorComparison.FirstBitwiseMismatch($"routed.r{r}", file.Get($"routed.r{r}"), outcomes[r].Routed)
                ?? TensorComparison.FirstBitwiseMismatch($"counts.r{r}", file.Get($"counts.r{r}"),
                    Tensor.FromArray(outcomes[r].Metadata.TokensPerLocalExpert.ToArray(), outcomes[r].Metadata.TokensPerLocalExpert.Length))
                ?? TensorComparison.FirstBitwiseMismatch($"out.r{r}", file.Get($"out.r{r}"), outcomes[r].Output);
            if (mismatch is not null) return mismatch;
        }
        Tensor[] finals = DispatchWorldRunner.GroupFinals(seed, outcomes);
        for (int g = 0; g < finals.Length; g++)
        {
            string? mismatch = TensorComparison.FirstBitwiseMismatch($"final.g{g}", file.Get($"final.g{g}"), finals[g]);
            if (mismatch is not null) return mismatch;
        }

        // Beyond the reference: no padding and no replication must give the same bits.
        var variants = new (string Name, TokenDispatcherConfig Config)[]
        {
            ("balanced sharding", seed.Config with { Sharding = SpShardingPolicy.Balanced }),
            ("sharded layout", seed.Config with { Layout = SequenceLayout.Sharded }),
            ("balanced sharding, sharded layout", seed.Config with { Sharding = SpShardingPolicy.Balanced, Layout = SequenceLayout.Sharded }),
        };
        foreach (var (name, config) in variants)
        {
            DispatchCase variant = seed with { Config = config };
            Tensor[] variantFinals = DispatchWorldRunner.GroupFinals(variant, DispatchWorldRunner.RunInProcess(variant, timeout));
            for (int g = 0; g < finals.Length; g++)
            {
                string? mismatch = TensorComparison.FirstBitwiseMismatch($"final.g{g} ({name})", file.Get($"final.g{g}"), variantFinals[g]);
                if (mismatch is not null) return mismatch;
            }
        }
        return null;
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

    private static string Text(SafetensorsContent file, string key)
        => file.Metadata.TryGetValue(key, out string? text)
            ? text
            : throw new InvalidDataException($"{file.SourceName}: metadata has no '{key}' entry");
}
