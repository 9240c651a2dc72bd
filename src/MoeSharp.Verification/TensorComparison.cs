using System.Globalization;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>Bitwise and tolerance comparisons that describe the first difference.</summary>
public static class TensorComparison
{
    /// <summary>
    /// Null when <paramref name="actual"/> has the shape and the exact bits of <paramref name="expected"/>
    /// (integers compare by value across int32/int64; floats must share the dtype, float32 or bfloat16); otherwise
    /// "name[index]: expected E, actual A".
    /// </summary>
    public static string? FirstBitwiseMismatch(string name, Tensor expected, Tensor actual)
    {
        if (!expected.Shape.SequenceEqual(actual.Shape))
        {
            return $"{name}: expected shape {expected.ShapeString}, actual {actual.ShapeString}";
        }
        if (IsInteger(expected.DType) && IsInteger(actual.DType))
        {
            for (int i = 0; i < expected.ElementCount; i++)
            {
                long e = ReadInteger(expected, i),
                    a = ReadInteger(actual, i);
                if (e != a)
                    return $"{name}{Index(expected, i)}: expected {e}, actual {a}";
            }
            return null;
        }
        if (expected.DType != actual.DType || expected.DType is not (DType.Float32 or DType.BFloat16))
        {
            return $"{name}: expected dtype {expected.DType}, actual {actual.DType}";
        }
        if (expected.DType == DType.BFloat16)
        {
            ReadOnlySpan<BFloat16> eb = expected.AsSpan<BFloat16>(),
                ab = actual.AsSpan<BFloat16>();
            for (int i = 0; i < eb.Length; i++)
            {
                if (eb[i] != ab[i])
                    return $"{name}{Index(expected, i)}: expected {Format(eb[i].ToSingle())}, actual {Format(ab[i].ToSingle())} (bfloat16)";
            }
            return null;
        }
        ReadOnlySpan<float> ev = expected.AsSpan<float>(),
            av = actual.AsSpan<float>();
        for (int i = 0; i < ev.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(ev[i]) != BitConverter.SingleToInt32Bits(av[i]))
            {
                return $"{name}{Index(expected, i)}: expected {Format(ev[i])}, actual {Format(av[i])}";
            }
        }
        return null;
    }

    /// <summary>‖a − e‖ / ‖e‖ over float32 tensors in float64 (‖a‖ when e is all zero).</summary>
    public static double RelativeError(Tensor expected, Tensor actual)
    {
        ReadOnlySpan<float> ev = expected.AsSpan<float>(),
            av = actual.AsSpan<float>();
        double diff = 0,
            norm = 0;
        for (int i = 0; i < ev.Length; i++)
        {
            double d = (double)av[i] - ev[i];
            diff += d * d;
            norm += (double)ev[i] * ev[i];
        }
        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }

    private static bool IsInteger(DType dtype) => dtype is DType.Int32 or DType.Int64;

    private static long ReadInteger(Tensor t, int i) =>
        t.DType == DType.Int64 ? t.AsSpan<long>()[i] : t.AsSpan<int>()[i];

    private static string Index(Tensor t, int flat)
    {
        if (t.Rank == 0)
            return "";
        var index = new int[t.Rank];
        for (int d = t.Rank - 1; d >= 0; d--)
        {
            int size = Math.Max(1, t.Dim(d));
            index[d] = flat % size;
            flat /= size;
        }
        return "[" + string.Join(", ", index) + "]";
    }

    private static string Format(float v) => v.ToString("R", CultureInfo.InvariantCulture);
}
