using System.Globalization;
using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Checks a <c>moe_layer</c> golden file's metadata (<c>dim</c>, <c>hidden</c>, <c>experts</c>, <c>top_k</c>,
/// <c>shared_hidden</c>, <c>tokens</c>) against the shapes of the tensors the file holds, before a layer is built
/// from it: a few-KB file whose metadata claims a layer of gigabytes is refused in one line naming the file, the
/// entry or tensor and the disagreement, instead of allocating that layer first and finding a tensor missing after.
/// </summary>
public static class GoldenLayerMetadata
{
    /// <summary>The layer sizes a <c>moe_layer</c> file's metadata gives, by their metadata keys.</summary>
    /// <param name="Dim"><c>dim</c>, D.</param>
    /// <param name="Hidden"><c>hidden</c>, H.</param>
    /// <param name="Experts"><c>experts</c>, E.</param>
    /// <param name="TopK"><c>top_k</c>, K.</param>
    /// <param name="SharedHidden"><c>shared_hidden</c>, Hs (0: no shared expert).</param>
    /// <param name="ExpertGroups"><c>num_expert_groups</c> (0: no node-limited routing).</param>
    /// <param name="LimitedGroups"><c>num_limited_groups</c>.</param>
    public sealed record Sizes(
        int Dim,
        int Hidden,
        int Experts,
        int TopK,
        int SharedHidden,
        int ExpertGroups,
        int LimitedGroups
    );

    /// <summary>
    /// Checks the metadata's sizes are in range before a layer's arguments are built from them, naming the file, the
    /// metadata entry and its value (where <see cref="MoeLayerArgs"/> and the router would name their parameters).
    /// </summary>
    /// <param name="name">The golden file's name, for messages.</param>
    /// <param name="sizes">The sizes its metadata gives.</param>
    /// <exception cref="InvalidDataException">A size is out of range.</exception>
    public static void CheckSizes(string name, Sizes sizes)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        int e = sizes.Experts,
            k = sizes.TopK,
            g = sizes.ExpertGroups,
            limited = sizes.LimitedGroups;
        Positive(name, "dim", sizes.Dim);
        Positive(name, "hidden", sizes.Hidden);
        Positive(name, "experts", e);
        if (k < 1 || k > e)
            throw new InvalidDataException($"{name}: metadata top_k = {k} must be in [1, experts = {e}]");
        if (sizes.SharedHidden < 0)
        {
            throw new InvalidDataException($"{name}: metadata shared_hidden = {sizes.SharedHidden} must be at least 0");
        }
        if (g < 0)
            throw new InvalidDataException($"{name}: metadata num_expert_groups = {g} must be at least 0");
        if (g == 0)
        {
            if (limited != 0)
            {
                throw new InvalidDataException(
                    $"{name}: metadata num_limited_groups = {limited} needs num_expert_groups > 0"
                );
            }
            return;
        }
        if (e % g != 0 || e / g < 2)
        {
            throw new InvalidDataException(
                $"{name}: metadata num_expert_groups = {g} must divide experts = {e} into groups of at least two"
            );
        }
        if (limited < 1 || limited > g)
        {
            throw new InvalidDataException(
                $"{name}: metadata num_limited_groups = {limited} must be in [1, num_expert_groups = {g}]"
            );
        }
        if ((long)limited * (e / g) < k)
        {
            throw new InvalidDataException(
                $"{name}: metadata num_limited_groups = {limited} groups of {e / g} experts leave fewer than "
                    + $"top_k = {k} eligible"
            );
        }
    }

    /// <summary>Throws an <see cref="InvalidDataException"/> at the first disagreement.</summary>
    /// <param name="file">The golden file.</param>
    /// <param name="args">The layer its metadata describes (<see cref="GoldenLayerReplay.ReadArgs"/>).</param>
    public static void Check(SafetensorsContent file, MoeLayerArgs args)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(args);
        string name = file.SourceName;
        int d = args.Dim,
            h = args.Hidden,
            e = args.NumExperts,
            k = args.TopK,
            hs = args.SharedHidden;
        CheckSizes(name, new Sizes(d, h, e, k, hs, args.NumExpertGroups, args.NumLimitedGroups));

        // The weights first: they are what a layer of the metadata's size would be filled from.
        Weight(file, MoeLayerCheckpoint.GateWeight, e, d);
        Weight(file, MoeLayerCheckpoint.ExpertsW1, e, h, d);
        Weight(file, MoeLayerCheckpoint.ExpertsW2, e, d, h);
        Weight(file, MoeLayerCheckpoint.ExpertsW3, e, h, d);
        if (file.Contains(MoeLayerCheckpoint.ExpertBias))
            Weight(file, MoeLayerCheckpoint.ExpertBias, e);
        if (hs > 0)
        {
            Weight(file, MoeLayerCheckpoint.SharedW1, hs, d);
            Weight(file, MoeLayerCheckpoint.SharedW2, d, hs);
            Weight(file, MoeLayerCheckpoint.SharedW3, hs, d);
        }

        Tensor x = Get(file, "x");
        if (x.DType != DType.Float32 || x.Rank != 2 || x.Dim(1) != d)
            throw Disagrees(name, "x", x, $"Float32 [N, {d}] (dim from the metadata)");
        int n = x.Dim(0);
        if (
            file.Metadata.TryGetValue("tokens", out string? tokens)
            && (!int.TryParse(tokens, NumberStyles.Integer, CultureInfo.InvariantCulture, out int t) || t != n)
        )
        {
            throw new InvalidDataException($"{name}: metadata tokens = '{tokens}' but x has {n} rows");
        }
        Shape(file, "grad_out", [n, d], DType.Float32);
        Shape(file, "out", [n, d], DType.Float32);
        Shape(file, "top_scores", [n, k], DType.Float32);
        Shape(file, "expert_ids", [n, k], DType.Int64);
        Shape(file, "tokens_per_expert", [e], DType.Int64);
        Gradients(file);
    }

    /// <summary>
    /// Each <c>grad.NAME</c> is float32 of its input <c>NAME</c>'s shape (<c>shared/golden/README.md</c>): a gradient
    /// of another shape, or of no input, is a malformed file rather than a replay that differs.
    /// </summary>
    private static void Gradients(SafetensorsContent file)
    {
        foreach (string name in file.Names.Where(n => n.StartsWith("grad.", StringComparison.Ordinal)))
        {
            string input = name["grad.".Length..];
            if (!file.TryGet(input, out Tensor? of))
            {
                throw new InvalidDataException(
                    $"{file.SourceName}: tensor '{name}' is the gradient of '{input}', which the file does not hold"
                );
            }
            Tensor grad = file.Get(name);
            if (grad.DType != DType.Float32 || !grad.Shape.SequenceEqual(of.Shape))
                throw Disagrees(file.SourceName, name, grad, $"Float32 {of.ShapeString} (the shape of '{input}')");
        }
    }

    private static void Positive(string file, string key, int value)
    {
        if (value < 1)
            throw new InvalidDataException($"{file}: metadata {key} = {value} must be at least 1");
    }

    /// <summary>A weight: float32 or bfloat16 (which the layer widens), of the metadata's shape.</summary>
    private static void Weight(SafetensorsContent file, string tensor, params int[] shape)
    {
        Tensor t = Get(file, tensor);
        if (t.DType is not (DType.Float32 or DType.BFloat16) || !t.Shape.SequenceEqual(shape))
            throw Disagrees(file.SourceName, tensor, t, $"Float32 {ShapeText(shape)} (from the metadata)");
    }

    private static void Shape(SafetensorsContent file, string tensor, int[] shape, DType dtype)
    {
        Tensor t = Get(file, tensor);
        if (t.DType != dtype || !t.Shape.SequenceEqual(shape))
            throw Disagrees(file.SourceName, tensor, t, $"{dtype} {ShapeText(shape)} (from the metadata and x)");
    }

    private static Tensor Get(SafetensorsContent file, string tensor) =>
        file.TryGet(tensor, out Tensor? t)
            ? t
            : throw new InvalidDataException($"{file.SourceName}: tensor '{tensor}' is missing");

    private static string ShapeText(int[] shape) => "[" + string.Join(", ", shape) + "]";

    private static InvalidDataException Disagrees(string file, string tensor, Tensor t, string expected) =>
        new($"{file}: tensor '{tensor}' is {t.DType} {t.ShapeString}, expected {expected}");
}
