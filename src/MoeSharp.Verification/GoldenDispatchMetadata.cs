using System.Globalization;
using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Checks a dispatch golden file's metadata (<c>world</c>, <c>sp</c>, <c>experts</c>, <c>top_k</c>, <c>tokens</c>,
/// <c>dim</c>, <c>dtype</c>) against the tensors the file holds, before any rank starts: a file that claims
/// <c>world = 100000</c> in 7 KB is refused in one line instead of starting threads.
/// </summary>
public static class GoldenDispatchMetadata
{
    /// <summary>Throws an <see cref="InvalidDataException"/> naming the file, the entry and the disagreement.</summary>
    public static void Check(SafetensorsContent file, int world, int sp, int experts, int topK)
    {
        string name = file.SourceName;
        if (world < 1 || world > InProcessWorld.MaxRanks)
        {
            throw new InvalidDataException(
                $"{name}: metadata world = {world} is outside [1, {InProcessWorld.MaxRanks}]"
            );
        }
        // Each rank has three tensors of its own: a world the file cannot describe is refused before any loop over it.
        if (world > file.Count)
        {
            throw new InvalidDataException(
                $"{name}: metadata world = {world} but the file holds only {file.Count} tensors (3 per rank)"
            );
        }
        if (experts < 1 || experts % world != 0)
        {
            throw new InvalidDataException(
                $"{name}: metadata experts = {experts} must be a positive multiple of world = {world}"
            );
        }
        if (topK < 1 || topK > experts)
        {
            throw new InvalidDataException($"{name}: metadata top_k = {topK} must be in [1, experts = {experts}]");
        }
        if (file.Metadata.TryGetValue("dtype", out string? dtype) && dtype != "float32")
        {
            throw new InvalidDataException($"{name}: metadata dtype = '{dtype}' but dispatch files hold float32 rows");
        }
        Tensor x0 = Require(file, "x.g0", DType.Float32, rank: 2);
        int tokens = x0.Dim(0),
            dim = x0.Dim(1);
        MetadataMatches(file, "tokens", tokens, "x.g0's rows");
        MetadataMatches(file, "dim", dim, "x.g0's columns");
        for (int g = 0; g < world / sp; g++)
        {
            Shape(file, $"x.g{g}", [tokens, dim], DType.Float32);
            Shape(file, $"scores.g{g}", [tokens, topK], DType.Float32);
            Shape(file, $"ids.g{g}", [tokens, topK], DType.Int64, DType.Int32);
            Shape(file, $"final.g{g}", [tokens, dim], DType.Float32);
        }
        for (int r = 0; r < world; r++)
        {
            Shape(file, $"counts.r{r}", [experts / world], DType.Int64, DType.Int32);
            Shape(file, $"out.r{r}", [tokens, dim], DType.Float32);
            Tensor routed = Require(file, $"routed.r{r}", DType.Float32, rank: 2);
            if (routed.Dim(1) != dim)
                throw Disagrees(name, $"routed.r{r}", routed, $"[R, {dim}]");
        }
    }

    private static void MetadataMatches(SafetensorsContent file, string key, int actual, string what)
    {
        if (!file.Metadata.TryGetValue(key, out string? text))
            return;
        if (
            !int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int declared)
            || declared != actual
        )
        {
            throw new InvalidDataException($"{file.SourceName}: metadata {key} = '{text}' but {what} say {actual}");
        }
    }

    private static Tensor Require(SafetensorsContent file, string tensor, DType dtype, int rank)
    {
        if (!file.TryGet(tensor, out Tensor? t))
            throw new InvalidDataException($"{file.SourceName}: tensor '{tensor}' is missing");
        if (t.DType != dtype || t.Rank != rank)
            throw Disagrees(file.SourceName, tensor, t, $"{dtype}, {rank} dimensions");
        return t;
    }

    private static void Shape(SafetensorsContent file, string tensor, int[] shape, params DType[] dtypes)
    {
        if (!file.TryGet(tensor, out Tensor? t))
            throw new InvalidDataException($"{file.SourceName}: tensor '{tensor}' is missing");
        if (!dtypes.Contains(t.DType) || !t.Shape.SequenceEqual(shape))
        {
            throw Disagrees(
                file.SourceName,
                tensor,
                t,
                $"{dtypes[0]} [{string.Join(", ", shape)}] (from the metadata and x.g0)"
            );
        }
    }

    private static InvalidDataException Disagrees(string file, string tensor, Tensor t, string expected) =>
        new($"{file}: tensor '{tensor}' is {t.DType} {t.ShapeString}, expected {expected}");
}
