using MoeSharp.Cli.Faults;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Training;

/// <summary>
/// Reads a <c>moe train</c> checkpoint file's float32 tensors for one rank: whole, or for a tensor stacked over the E
/// experts only this rank's experts, read from their place in the file. A rank then holds its own share of the
/// experts' weights and moments, never the whole checkpoint.
/// </summary>
internal sealed class RankCheckpointReader(LazySafetensorsFile file, int experts, int firstExpert, int localExperts)
{
    /// <summary>The file's path, for messages.</summary>
    public string Path => file.Path;

    /// <summary>The file's metadata.</summary>
    public IReadOnlyDictionary<string, string> Metadata => file.Metadata;

    /// <summary>The tensors' names, in the file's order.</summary>
    public IEnumerable<string> Names => file.Tensors.Keys;

    /// <summary>Tensor <paramref name="name"/>, whole.</summary>
    /// <exception cref="InvalidDataException">It is missing or not float32.</exception>
    public Tensor Whole(string name)
    {
        SafetensorsTensorInfo info = Float32(name);
        var t = Tensor.Uninitialized(DType.Float32, Shape(info, info.Shape));
        file.ReadFloat32(name, 0, t.AsSpan<float>());
        return Finite(name, t, 0);
    }

    /// <summary>This rank's experts of tensor <paramref name="name"/>, stacked over all E experts.</summary>
    /// <exception cref="InvalidDataException">It is missing, not float32, or not [E, …].</exception>
    public Tensor OwnExperts(string name)
    {
        SafetensorsTensorInfo info = Float32(name);
        if (info.Shape.Length < 1 || info.Shape[0] != experts)
        {
            throw new InvalidDataException(
                $"{file.Path}: '{name}' is {info.DTypeName} {info.ShapeText}; expected F32 [{experts}, …], one row per "
                    + "expert"
            );
        }
        long[] local = (long[])info.Shape.Clone();
        local[0] = localExperts;
        long first = firstExpert * (info.ElementCount / experts);
        var t = Tensor.Uninitialized(DType.Float32, Shape(info, local));
        file.ReadFloat32(name, first, t.AsSpan<float>());
        return Finite(name, t, first);
    }

    /// <summary>
    /// <paramref name="t"/> (elements from <paramref name="first"/> on of tensor <paramref name="name"/>), refused when
    /// it holds a NaN or an infinity: a run resumed from it would stop at its first step as if it had diverged.
    /// </summary>
    private Tensor Finite(string name, Tensor t, long first)
    {
        ReadOnlySpan<float> values = t.AsSpan<float>();
        int bad = NonFiniteValues.IndexOfFirst(values);
        if (bad >= 0)
        {
            throw new InvalidDataException(
                $"{file.Path}: '{name}' holds {values[bad]} at element {first + bad}; a checkpoint to resume from holds "
                    + "finite values"
            );
        }
        return t;
    }

    private SafetensorsTensorInfo Float32(string name)
    {
        if (!file.Tensors.TryGetValue(name, out SafetensorsTensorInfo? info))
            throw new InvalidDataException($"{file.Path}: tensor '{name}' is missing");
        if (info.DTypeName != "F32")
        {
            throw new InvalidDataException(
                $"{file.Path}: '{name}' is {info.DTypeName} {info.ShapeText}; a checkpoint of moe train holds F32"
            );
        }
        return info;
    }

    /// <summary>The shape as a tensor's, refused in one line when a dimension passes int.</summary>
    private int[] Shape(SafetensorsTensorInfo info, long[] shape) =>
        shape.All(d => d <= int.MaxValue)
            ? Array.ConvertAll(shape, d => (int)d)
            : throw new InvalidDataException($"{file.Path}: '{info.Name}' {info.ShapeText} has a dimension past 2^31");
}
