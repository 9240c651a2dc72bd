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
            CheckIds(file, $"ids.g{g}", experts, topK);
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

    /// <summary>
    /// The format's ids are distinct per token and name an expert (<c>shared/golden/README.md</c>). The dispatcher
    /// would route a repeated id twice and compare against a file made by a router that never repeats, so a tampered
    /// file would read as a dispatcher mismatch instead of a malformed file.
    /// </summary>
    private static void CheckIds(SafetensorsContent file, string tensor, int experts, int topK)
    {
        Tensor ids = file.Get(tensor);
        long[] row = new long[topK];
        for (int t = 0; t < ids.Dim(0); t++)
        {
            for (int k = 0; k < topK; k++)
            {
                row[k] = ids.DType == DType.Int64 ? ids.AsSpan<long>()[t * topK + k] : ids.AsSpan<int>()[t * topK + k];
                if (row[k] < 0 || row[k] >= experts)
                {
                    throw new InvalidDataException(
                        $"{file.SourceName}: tensor '{tensor}' [token {t}, slot {k}] = {row[k]} is outside [0, "
                            + $"experts = {experts})"
                    );
                }
                int first = Array.IndexOf(row, row[k], 0, k);
                if (first >= 0)
                {
                    throw new InvalidDataException(
                        $"{file.SourceName}: tensor '{tensor}' [token {t}] repeats expert {row[k]} (slots {first} "
                            + $"and {k}); ids are distinct per token"
                    );
                }
            }
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
