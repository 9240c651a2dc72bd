namespace MoeSharp.Checkpoints;

/// <summary>
/// Range and size checks of a <c>config.json</c>'s layer keys, made before a <see cref="Layer.MoeLayerArgs"/> (and a
/// list of the layer's tensors) is built from them. Each refusal names the file, the key as the family spells it and
/// the value, where the library's own range checks would name a parameter instead; and a config whose E or tensor
/// sizes no layer could hold is refused before anything is allocated for it.
/// </summary>
internal static class HfMoeConfigSizes
{
    /// <summary>A config key and the value read from it.</summary>
    /// <param name="Name">The key, as the family's config.json spells it.</param>
    /// <param name="Value">Its value.</param>
    public readonly record struct Key(string Name, int Value);

    /// <summary>Checks D, H, E and K, and that the router gate [E, D] and an expert's [H, D] fit one tensor.</summary>
    /// <exception cref="InvalidDataException">A key is out of range; the message names the file, key and value.
    /// </exception>
    public static void CheckLayer(string source, Key dim, Key hidden, Key experts, Key topK)
    {
        AtLeastOne(source, dim);
        AtLeastOne(source, hidden);
        AtLeastOne(source, experts);
        if (experts.Value > HfMoeConfig.MaxExperts)
        {
            throw new InvalidDataException(
                $"{source}: '{experts.Name}' is {experts.Value}; MoeSharp reads at most {HfMoeConfig.MaxExperts} "
                    + "routed experts"
            );
        }
        if (topK.Value < 1 || topK.Value > experts.Value)
        {
            throw new InvalidDataException(
                $"{source}: '{topK.Name}' is {topK.Value}; it must be in [1, '{experts.Name}' = {experts.Value}]"
            );
        }
        FitsOneTensor(source, $"'{experts.Name}' × '{dim.Name}'", experts.Value, dim.Value, "the router gate [E, D]");
        FitsOneTensor(source, $"'{hidden.Name}' × '{dim.Name}'", hidden.Value, dim.Value, "an expert's [H, D]");
    }

    /// <summary>Checks that the shared expert's [Hs, D] fits one tensor.</summary>
    /// <param name="source">The config, for messages.</param>
    /// <param name="sharedKeys">How the config gives Hs, e.g. <c>'shared_expert_intermediate_size'</c>.</param>
    /// <param name="sharedHidden">Hs.</param>
    /// <param name="dim">D's key and value.</param>
    /// <exception cref="InvalidDataException">It does not; the message names the file and the keys.</exception>
    public static void CheckShared(string source, string sharedKeys, int sharedHidden, Key dim) =>
        FitsOneTensor(source, $"{sharedKeys} × '{dim.Name}'", sharedHidden, dim.Value, "the shared expert's [Hs, D]");

    /// <summary>
    /// Checks DeepSeek-V3's grouping (<c>n_group</c> groups of experts, <c>topk_group</c> kept per token; one group or
    /// none is no grouping) as the router will.
    /// </summary>
    /// <exception cref="InvalidDataException">The groups do not divide E, or leave fewer than K experts eligible.
    /// </exception>
    public static void CheckGroups(string source, Key groups, Key keptGroups, Key experts, Key topK)
    {
        if (groups.Value <= 1)
            return;
        if (experts.Value % groups.Value != 0 || experts.Value / groups.Value < 2)
        {
            throw new InvalidDataException(
                $"{source}: '{groups.Name}' is {groups.Value}; it must divide '{experts.Name}' = {experts.Value} "
                    + "into groups of at least two"
            );
        }
        if (keptGroups.Value < 1 || keptGroups.Value > groups.Value)
        {
            throw new InvalidDataException(
                $"{source}: '{keptGroups.Name}' is {keptGroups.Value}; it must be in [1, '{groups.Name}' = "
                    + $"{groups.Value}]"
            );
        }
        long eligible = (long)keptGroups.Value * (experts.Value / groups.Value);
        if (eligible < topK.Value)
        {
            throw new InvalidDataException(
                $"{source}: '{keptGroups.Name}' = {keptGroups.Value} groups of {experts.Value / groups.Value} experts "
                    + $"leave {eligible} eligible, fewer than '{topK.Name}' = {topK.Value}"
            );
        }
    }

    private static void AtLeastOne(string source, Key key)
    {
        if (key.Value < 1)
            throw new InvalidDataException($"{source}: '{key.Name}' is {key.Value}; it must be at least 1");
    }

    /// <summary>A tensor is one array: its element count must be at most <see cref="Array.MaxLength"/>.</summary>
    private static void FitsOneTensor(string source, string keys, long rows, long columns, string tensor)
    {
        long elements = rows * columns;
        if (elements > Array.MaxLength)
        {
            throw new InvalidDataException(
                $"{source}: {keys} is {elements} elements for {tensor}, more than the {Array.MaxLength} a tensor "
                    + "can hold"
            );
        }
    }
}
