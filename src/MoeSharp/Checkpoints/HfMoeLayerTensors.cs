using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Checkpoints;

/// <summary>Which parameter of a <see cref="MoeLayer"/> a checkpoint tensor fills.</summary>
internal enum HfMoeSlot
{
    Gate,
    ScoreBias,
    ExpertW1,
    ExpertW3,
    ExpertW2,
    SharedW1,
    SharedW3,
    SharedW2,
    SharedGate,
}

/// <summary>One tensor a layer needs: its checkpoint name, the shape the config implies and where it goes.</summary>
/// <param name="Name">The Hugging Face name.</param>
/// <param name="Shape">The shape the config implies.</param>
/// <param name="Slot">The layer parameter it fills.</param>
/// <param name="Expert">The global routed-expert id for expert slots, else -1.</param>
internal sealed record HfMoeTensor(string Name, int[] Shape, HfMoeSlot Slot, int Expert);

/// <summary>A tensor whose header checked out, with its F8_E4M3 block scale when it has one.</summary>
internal sealed record HfMoeCheckedTensor(
    HfMoeTensor Wanted,
    SafetensorsTensorInfo Info,
    SafetensorsTensorInfo? Scale,
    int BlockRows,
    int BlockColumns
);

/// <summary>
/// The checkpoint tensors of one decoder layer's MoE block — the router gate (and DeepSeek-V3's score bias), each
/// routed expert's three projections, the shared expert's and Qwen2-MoE's shared gate — with the shapes the config
/// implies, and their check against the checkpoint's headers: presence, shape and a readable dtype (F8_E4M3 with a
/// block scale of the right shape). Headers only: no tensor data is read, so a whole layer is checked before any
/// memory is allocated for it.
/// </summary>
internal static class HfMoeLayerTensors
{
    /// <summary>
    /// The tensors layer <paramref name="layer"/> needs for routed experts
    /// <c>[firstExpert, firstExpert + numExperts)</c>, plus the router's and the shared expert's; the router gate
    /// first.
    /// </summary>
    /// <remarks>
    /// Lazy, so that a check stops at the first bad tensor without having built all 3·E records (E up to
    /// <see cref="HfMoeConfig.MaxExperts"/>): a gate whose shape contradicts the config's E is refused before any
    /// expert's name is made.
    /// </remarks>
    public static IEnumerable<HfMoeTensor> Wanted(HfMoeConfig config, int layer, int firstExpert, int numExperts)
    {
        MoeLayerArgs a = config.Args;
        int e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden;
        yield return new(config.GateName(layer), [e, d], HfMoeSlot.Gate, -1);
        if (config.ScoreBiasName(layer) is { } bias)
            yield return new(bias, [e], HfMoeSlot.ScoreBias, -1);
        for (int expert = firstExpert; expert < firstExpert + numExperts; expert++)
        {
            var (gate, up, down) = config.ExpertNames(layer, expert);
            yield return new(gate, [h, d], HfMoeSlot.ExpertW1, expert);
            yield return new(up, [h, d], HfMoeSlot.ExpertW3, expert);
            yield return new(down, [d, h], HfMoeSlot.ExpertW2, expert);
        }
        if (config.SharedNames(layer) is var (sGate, sUp, sDown))
        {
            int hs = a.SharedHidden;
            yield return new(sGate, [hs, d], HfMoeSlot.SharedW1, -1);
            yield return new(sUp, [hs, d], HfMoeSlot.SharedW3, -1);
            yield return new(sDown, [d, hs], HfMoeSlot.SharedW2, -1);
        }
        if (config.SharedGateName(layer) is { } sharedGate)
            yield return new(sharedGate, [1, d], HfMoeSlot.SharedGate, -1);
    }

    /// <summary>Checks one tensor's header (and its block scale's).</summary>
    /// <exception cref="InvalidDataException">The tensor is missing, mis-shaped or of an unreadable dtype; the message
    /// names the checkpoint directory, the layer and the tensor.</exception>
    public static HfMoeCheckedTensor Check(
        SafetensorsCheckpoint checkpoint,
        HfMoeConfig config,
        int layer,
        HfMoeTensor wanted
    )
    {
        string name = wanted.Name;
        int[] shape = wanted.Shape;
        string expected = "[" + string.Join(", ", shape) + "]";
        string where = $"{checkpoint.Directory}: layer {layer}";
        if (!checkpoint.TryGetTensor(name, out SafetensorsTensorInfo info))
        {
            throw new InvalidDataException($"{where}: missing tensor '{name}' (expected {expected})");
        }
        if (!info.Shape.SequenceEqual(shape.Select(s => (long)s)))
        {
            throw new InvalidDataException(
                $"{where}: tensor '{name}' has shape {info.ShapeText} but the layer expects {expected}"
            );
        }
        if (info.ElementType == StoredElementType.Other)
        {
            throw new InvalidDataException(
                $"{where}: tensor '{name}' is {info.DTypeName}; MoeSharp reads F32, BF16, F16 and F8_E4M3"
            );
        }
        if (info.ElementType != StoredElementType.Float8E4M3)
            return new HfMoeCheckedTensor(wanted, info, null, 0, 0);
        if (shape.Length != 2)
        {
            throw new InvalidDataException(
                $"{where}: tensor '{name}' is F8_E4M3 but not a matrix; only block-scaled weights are read"
            );
        }
        IReadOnlyList<int> block = config.WeightBlockSize ?? [128, 128];
        int blockRows = block[0],
            blockColumns = block[1];
        string scaleName = name + "_scale_inv";
        long[] scaleShape = [(shape[0] + blockRows - 1) / blockRows, (shape[1] + blockColumns - 1) / blockColumns];
        if (!checkpoint.TryGetTensor(scaleName, out SafetensorsTensorInfo scale))
        {
            throw new InvalidDataException(
                $"{where}: tensor '{name}' is F8_E4M3 but its block scale '{scaleName}' is missing"
            );
        }
        if (
            !scale.Shape.SequenceEqual(scaleShape)
            || scale.ElementType is StoredElementType.Other or StoredElementType.Float8E4M3
        )
        {
            throw new InvalidDataException(
                $"{where}: block scale '{scaleName}' is {scale.DTypeName} {scale.ShapeText}; expected a float "
                    + $"[{scaleShape[0]}, {scaleShape[1]}] for {blockRows} × {blockColumns} blocks"
            );
        }
        return new HfMoeCheckedTensor(wanted, info, scale, blockRows, blockColumns);
    }
}
