using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MoeSharp.Cuda.Kernels;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The FMA question, checked without a GPU: ILGPU's PTX backend compiles the kernels offline (with the backend's own
/// context settings), and the PTX of the ordered reductions and the scaled gathers has no float32 multiply at all —
/// products are <c>mul.f64</c> rounded by <c>cvt.rn.f32.f64</c> — so no <c>add.f32</c> has a multiply for ptxas to
/// contract with, while a plain C# <c>a * b + c</c> gives contractable <c>mul.f32</c> + <c>add.f32</c>.
/// </summary>
public class PtxContractionTests
{
    internal static string Ptx(string kernelName, Type type, params Type[] typeArguments)
    {
        using var context = Context.Create(builder => builder.Cuda().EnableAlgorithms());
        using var backend = new PTXBackend(
            context,
            new CudaCapabilityContext(CudaArchitecture.SM_90),
            CudaArchitecture.SM_90,
            CudaInstructionSet.ISA_80,
            null
        );
        MethodInfo method = type.GetMethod(
            kernelName,
            BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static
        )!;
        if (typeArguments.Length > 0)
            method = method.MakeGenericMethod(typeArguments);
        var kernel = (PTXCompiledKernel)
            backend.Compile(EntryPointDescription.FromImplicitlyGroupedKernel(method), default);
        return kernel.PTXAssembly;
    }

    internal static string[] FloatArithmetic(string ptx) =>
        Regex
            .Matches(ptx, @"\b(mul|add|sub|fma|mad)(\.[a-z]+)*\.f32\b")
            .Select(m => m.Value)
            .Distinct()
            .Order()
            .ToArray();

    /// <summary>
    /// Every row kernel with a product, for each row type (bfloat16 or float32), in its CUDA instantiation.
    /// </summary>
    public static TheoryData<Type, string, bool> StrictKernels()
    {
        var data = new TheoryData<Type, string, bool>();
        foreach (bool bfloat16 in new[] { false, true })
        {
            data.Add(typeof(RowKernelBodies), nameof(RowKernelBodies.GatherRows), bfloat16);
            data.Add(typeof(RowKernelBodies), nameof(RowKernelBodies.GatherReduce), bfloat16);
            data.Add(typeof(PackedRowKernelBodies), nameof(PackedRowKernelBodies.GatherRows), bfloat16);
            data.Add(typeof(PackedRowKernelBodies), nameof(PackedRowKernelBodies.GatherReduce), bfloat16);
            data.Add(typeof(TiledRowKernelBodies), nameof(TiledRowKernelBodies.GatherRows), bfloat16);
            data.Add(typeof(TiledRowKernelBodies), nameof(TiledRowKernelBodies.GatherReduce), bfloat16);
            data.Add(typeof(TokenScatterKernelBodies), nameof(TokenScatterKernelBodies.ScatterTokensTiled), bfloat16);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(StrictKernels))]
    public void StrictRowKernels_HaveNoFloat32Multiply(Type bodies, string kernel, bool bfloat16)
    {
        Type row = bfloat16 ? typeof(BFloat16DeviceRow) : typeof(Float32DeviceRow);
        Type element = bfloat16 ? typeof(ushort) : typeof(float);
        // The one-value kernels also take the storage type; the packed and tiled ones move 32-bit words.
        Type[] arguments =
            bodies == typeof(RowKernelBodies)
                ? [typeof(CudaStrictFloat), element, row]
                : [typeof(CudaStrictFloat), row];
        AssertNoContractableMultiply(Ptx(kernel, bodies, arguments));
    }

    /// <summary>The token scatter into the padded experts' bfloat16 rows scales as the row kernels do.</summary>
    [Theory]
    [InlineData(nameof(PlacedRowKernelBodies.PlaceTokensTiled))]
    [InlineData(nameof(PlacedRowKernelBodies.PlaceRows))]
    public void PlacedRowKernels_HaveNoFloat32Multiply(string kernel) =>
        AssertNoContractableMultiply(Ptx(kernel, typeof(PlacedRowKernelBodies), typeof(CudaStrictFloat)));

    /// <summary>Products exist (as float64 multiplies rounded to float32), float32 arithmetic is adds only.</summary>
    private static void AssertNoContractableMultiply(string ptx)
    {
        string[] ops = FloatArithmetic(ptx);
        Assert.True(ops.All(op => op.StartsWith("add.", StringComparison.Ordinal)), string.Join(", ", ops));
        Assert.Matches(@"\bmul(\.rn)?\.f64\b", ptx);
        Assert.Contains("cvt.rn.f32.f64", ptx);
    }

    [Fact]
    public void PlainCSharp_EmitsContractableMulAndAdd()
    {
        // The evidence that the float64 products are needed: ILGPU 1.5.3 emits mul.f32 / add.f32 without a rounding
        // modifier.
        string[] ops = FloatArithmetic(Ptx(nameof(PlainMultiplyAdd), typeof(PtxContractionTests)));
        Assert.Contains("mul.f32", ops);
        Assert.Contains("add.f32", ops);
    }

    /// <summary>A kernel written the naive way: <c>c = c + a · b</c>.</summary>
    internal static void PlainMultiplyAdd(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) =>
        c[i] = c[i] + a[i] * b[i];
}
