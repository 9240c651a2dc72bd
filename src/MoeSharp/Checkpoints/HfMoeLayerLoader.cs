using System.Runtime.InteropServices;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Checkpoints;

/// <summary>
/// Loads the MoE block of one decoder layer from a Hugging Face checkpoint into a <see cref="MoeLayer"/>, reading
/// only what this rank keeps: the router (and DeepSeek-V3's score bias), this rank's routed experts and the shared
/// expert (with Qwen2-MoE's gate). F32, BF16, F16 and F8_E4M3 are widened to float32; F8_E4M3 weights are multiplied
/// by their block-wise <c>weight_scale_inv</c> (DeepSeek-V3). Every tensor's presence, dtype and shape is checked
/// before any byte is read, so a bad checkpoint leaves the layer as it was and names the layer and the tensor.
/// </summary>
/// <remarks>
/// Reads go straight into the layer's host tensors (a device layer gets them through a bounded host staging
/// buffer), so loading needs no memory beyond the layer's own besides small buffers.
/// </remarks>
public static class HfMoeLayerLoader
{
    /// <summary>Rows staged per copy to a device tensor, and per dequantisation pass.</summary>
    private const int StagingElements = 1 << 20;

    /// <summary>
    /// Checks that decoder layer <paramref name="layer"/> has a MoE block; call before building the layer.
    /// </summary>
    /// <exception cref="InvalidDataException">The layer is dense or out of range; the message names it.</exception>
    public static void CheckMoeLayer(HfMoeConfig config, int layer)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (layer < 0 || layer >= config.NumLayers)
        {
            throw new InvalidDataException(
                $"{config.Source}: layer {layer} does not exist (num_hidden_layers is {config.NumLayers})"
            );
        }
        if (config.IsMoeLayer(layer))
            return;
        string why = config.Family switch
        {
            HfMoeFamily.DeepseekV3 => $"below first_k_dense_replace = {config.FirstDenseLayers}",
            _ => config.MlpOnlyLayers.Contains(layer)
                ? "listed in mlp_only_layers"
                : $"(layer + 1) is not a multiple of decoder_sparse_step = {config.SparseStep}",
        };
        throw new InvalidDataException($"{config.Source}: layer {layer} is a dense MLP layer, not MoE ({why})");
    }

    /// <summary>
    /// Loads decoder layer <paramref name="layer"/>'s MoE block into <paramref name="target"/> (this rank's experts
    /// only).
    /// </summary>
    /// <param name="target">A layer built with <see cref="HfMoeConfig.Args"/> (any EP rank, host or device).</param>
    /// <param name="checkpoint">The checkpoint's tensors.</param>
    /// <param name="config">Its config.json.</param>
    /// <param name="layer">Decoder layer index.</param>
    /// <exception cref="InvalidDataException">The layer is dense, or a tensor is missing, mis-shaped or of an
    /// unreadable dtype.</exception>
    public static void Load(MoeLayer target, SafetensorsCheckpoint checkpoint, HfMoeConfig config, int layer)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(checkpoint);
        CheckMoeLayer(config, layer);
        if (target.Args != config.Args)
        {
            throw new ArgumentException(
                $"the layer was built with {target.Args} but {config.Source} describes {config.Args}",
                nameof(target)
            );
        }
        var plan = Plan(target, checkpoint, config, layer);
        target.Experts.MarkWeightsChanged(); // the padded experts' bfloat16 copies are stale (even if a read fails)
        foreach (Read read in plan)
            Execute(read, checkpoint);
    }

    /// <summary>
    /// Bytes of the checkpoint tensors one rank reads for the layer (what <see cref="Load"/> will read).
    /// </summary>
    public static long RankBytes(MoeLayer target, SafetensorsCheckpoint checkpoint, HfMoeConfig config, int layer)
    {
        ArgumentNullException.ThrowIfNull(target);
        CheckMoeLayer(config, layer);
        return Plan(target, checkpoint, config, layer).Sum(r => r.Info.ByteLength + (r.Scale?.ByteLength ?? 0));
    }

    /// <summary>
    /// Checks, from the headers alone, that the checkpoint holds every tensor of layer <paramref name="layer"/>'s MoE
    /// block for all E experts (what the ranks of any EP world read together), with the shapes <paramref
    /// name="config"/> implies and readable dtypes. Call before building the layer: a checkpoint that lacks its tensors
    /// is then refused before the layer's weights are allocated.
    /// </summary>
    /// <exception cref="InvalidDataException">The layer is dense, or a tensor is missing, mis-shaped or of an
    /// unreadable dtype (the first one, naming the checkpoint directory, the layer and the tensor).</exception>
    public static void CheckTensors(SafetensorsCheckpoint checkpoint, HfMoeConfig config, int layer)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        CheckMoeLayer(config, layer);
        foreach (HfMoeTensor wanted in HfMoeLayerTensors.Wanted(config, layer, 0, config.Args.NumExperts))
            HfMoeLayerTensors.Check(checkpoint, config, layer, wanted);
    }

    private static List<Read> Plan(MoeLayer target, SafetensorsCheckpoint checkpoint, HfMoeConfig config, int layer)
    {
        int d = config.Args.Dim,
            h = config.Args.Hidden;
        var plan = new List<Read>();
        foreach (
            HfMoeTensor wanted in HfMoeLayerTensors.Wanted(
                config,
                layer,
                target.FirstExpert,
                target.Experts.NumLocalExperts
            )
        )
        {
            HfMoeCheckedTensor t = HfMoeLayerTensors.Check(checkpoint, config, layer, wanted);
            int j = wanted.Expert - target.FirstExpert;
            (Tensor into, int offset) = wanted.Slot switch
            {
                HfMoeSlot.Gate => (target.Router.GateWeight, 0),
                HfMoeSlot.ScoreBias => (target.ExpertBias!, 0),
                HfMoeSlot.ExpertW1 => (target.Experts.W1, j * h * d),
                HfMoeSlot.ExpertW3 => (target.Experts.W3, j * h * d),
                HfMoeSlot.ExpertW2 => (target.Experts.W2, j * d * h),
                HfMoeSlot.SharedW1 => (target.Shared!.W1, 0),
                HfMoeSlot.SharedW3 => (target.Shared!.W3, 0),
                HfMoeSlot.SharedW2 => (target.Shared!.W2, 0),
                HfMoeSlot.SharedGate => (target.SharedGate!, 0),
                _ => throw new InvalidOperationException($"unknown slot {wanted.Slot}"),
            };
            plan.Add(new Read(t.Info, into, offset, wanted.Shape, t.Scale, t.BlockRows, t.BlockColumns));
        }
        return plan;
    }

    private static void Execute(Read read, SafetensorsCheckpoint checkpoint)
    {
        int columns = read.Shape.Length == 2 ? read.Shape[1] : read.Shape[0];
        int rows = read.Shape.Length == 2 ? read.Shape[0] : 1;
        float[]? scales = null;
        if (read.Scale is { } scale)
        {
            scales = new float[scale.ElementCount];
            checkpoint.ReadFloat32(scale.Name, 0, scales);
        }
        // Chunks of whole rows (whole block rows when scaled), so a chunk never splits a scale block vertically.
        int rowsPerChunk = Math.Max(1, StagingElements / columns);
        if (read.BlockRows > 0)
            rowsPerChunk = Math.Max(1, rowsPerChunk / read.BlockRows) * read.BlockRows;
        float[]? staging = read.Into.IsOnHost ? null : new float[Math.Min(rows, rowsPerChunk) * columns];
        for (int row = 0; row < rows; row += rowsPerChunk)
        {
            int count = Math.Min(rowsPerChunk, rows - row);
            int elements = count * columns;
            Span<float> chunk = staging is null
                ? read.Into.AsSpan<float>().Slice(read.Offset + row * columns, elements)
                : staging.AsSpan(0, elements);
            checkpoint.ReadFloat32(read.Info.Name, (long)row * columns, chunk);
            if (scales is not null)
                Dequantize(chunk, row, columns, scales, read.BlockRows, read.BlockColumns);
            read.Into.DeviceBuffer?.CopyFromHost(
                MemoryMarshal.AsBytes((ReadOnlySpan<float>)chunk),
                (long)(read.Offset + row * columns) * sizeof(float)
            );
        }
    }

    /// <summary>
    /// DeepSeek-V3's block-wise FP8 scaling: <c>w[i, j] = q[i, j] · scale_inv[i / bRows, j / bColumns]</c>.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(
        System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization
    )]
    private static void Dequantize(
        Span<float> chunk,
        int firstRow,
        int columns,
        float[] scales,
        int blockRows,
        int blockColumns
    )
    {
        int scaleColumns = (columns + blockColumns - 1) / blockColumns;
        int rows = chunk.Length / columns;
        for (int r = 0; r < rows; r++)
        {
            Span<float> row = chunk.Slice(r * columns, columns);
            int scaleRow = (firstRow + r) / blockRows * scaleColumns;
            for (int c = 0; c < columns; c++)
                row[c] *= scales[scaleRow + c / blockColumns];
        }
    }

    /// <summary>One checked tensor and where it goes.</summary>
    private sealed record Read(
        SafetensorsTensorInfo Info,
        Tensor Into,
        int Offset,
        int[] Shape,
        SafetensorsTensorInfo? Scale,
        int BlockRows,
        int BlockColumns
    );
}
