"""The numbers the synthetic generator (``synthetic``) draws from, kept apart from its code.

Why it exists: the generator must look like the UCI extract without ever holding a row of it, so
the real file (101,766 rows) was read once and reduced to marginals: for each column, how many rows
hold each value (the ``"value:count ..."`` strings below; admission source is counted per admission
type). Only those counts are kept, no row was copied, so this module can live in git where the
real file must not. The generator's output is a pure function of ``(rows, seed)`` and these
numbers: change one and every synthetic file changes.

Below the counts: tables derived from them (the ICD-9 group of each diagnosis code, admission
source given admission type, the drug columns) and the effect sizes of the simulated readmission
model, chosen, then checked against the real file (label shares; a plain model's ROC AUC ~0.7,
see tests/data/test_data_synthetic.py). ``synthetic`` imports this module as ``m``.
"""

from __future__ import annotations

import numpy as np

from readmit_kedro.schema import DRUG_COLUMNS, DRUG_VALUES


class _Table:
    """A categorical marginal: the values as written in the file and their cumulative shares."""

    def __init__(self, values: list[str], weights: list[float]) -> None:
        self.values = np.asarray(values, dtype=object)
        self.weights = np.asarray(weights, dtype=float)
        self.cum = np.cumsum(self.weights) / self.weights.sum()
        numeric = all(v.isdigit() for v in values)
        self.ints = np.array([int(v) for v in values], dtype=np.int64) if numeric else None
        self.groups: np.ndarray | None = None  # diagnosis tables: ICD-9 group per code

    def index(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF: value indices for uniforms ``u`` (so correlated uniforms keep the marginal)."""
        return np.minimum(np.searchsorted(self.cum, u, side="right"), len(self.values) - 1)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.index(rng.random(n))


def _counts(text: str) -> _Table:
    """Parse ``"value:count value:count ..."`` (counts from the real file, 101,766 rows)."""
    pairs = [item.rpartition(":") for item in text.split()]
    return _Table([v for v, _, _ in pairs], [float(c) for _, _, c in pairs])


# --------------------------------------------------------------------------------------------------
# Marginals, counted once from the real file (101,766 rows). Only counts per value; no row copied.

RACE = _counts("Caucasian:76099 AfricanAmerican:19210 ?:2273 Hispanic:2037 Other:1506 Asian:641 ")
GENDER = _counts("Female:54708 Male:47055 Unknown/Invalid:3 ")
WEIGHT = _counts(
    "?:98569 [75-100):1336 [50-75):897 [100-125):625 [125-150):145 [25-50):97 [0-25):48 "
    "[150-175):35 [175-200):11 >200:3 "
)
ADMISSION_TYPE_ID = _counts("1:53990 3:18869 2:18480 6:5291 5:4785 8:320 7:21 4:10 ")
DISCHARGE_DISPOSITION_ID = _counts(
    "1:60234 3:13954 6:12902 18:3691 2:2128 22:1993 11:1642 5:1184 25:989 4:815 7:623 23:412 13:399 "
    "14:372 28:139 8:108 15:63 24:48 9:21 17:14 16:11 19:8 10:6 27:5 12:3 20:2 "
)
TIME_IN_HOSPITAL = _counts(
    "1:14208 2:17224 3:17756 4:13924 5:9966 6:7539 7:5859 8:4391 9:3002 10:2342 11:1855 12:1448 "
    "13:1210 14:1042 "
)
PAYER_CODE = _counts(
    "?:40256 MC:32439 HM:6274 SP:5007 BC:4655 MD:3532 CP:2533 UN:2448 CM:1937 OG:1033 PO:592 DM:549 "
    "CH:146 WC:135 OT:95 MP:79 SI:55 FR:1 "
)
MEDICAL_SPECIALTY = _counts(
    "?:49949 InternalMedicine:14635 Emergency/Trauma:7565 Family/GeneralPractice:7440 "
    "Cardiology:5352 Surgery-General:3099 Nephrology:1613 Orthopedics:1400 "
    "Orthopedics-Reconstructive:1233 Radiologist:1140 Pulmonology:871 Psychiatry:854 Urology:685 "
    "ObstetricsandGynecology:671 Surgery-Cardiovascular/Thoracic:652 Gastroenterology:564 "
    "Surgery-Vascular:533 Surgery-Neuro:468 PhysicalMedicineandRehabilitation:391 Oncology:348 "
    "Pediatrics:254 Hematology/Oncology:207 Neurology:203 Pediatrics-Endocrinology:159 "
    "Otolaryngology:125 Endocrinology:120 Surgery-Thoracic:109 Psychology:101 Podiatry:100 "
    "Surgery-Cardiovascular:98 Pediatrics-CriticalCare:87 Hematology:82 Gynecology:58 "
    "Hospitalist:57 Radiology:53 Surgeon:45 Surgery-Plastic:41 Osteopath:39 Ophthalmology:38 "
    "InfectiousDiseases:37 SurgicalSpecialty:33 Obsterics&Gynecology-GynecologicOnco:25 "
    "Pediatrics-Pulmonology:25 Anesthesiology-Pediatric:19 Obstetrics:19 Rheumatology:17 "
    "Pathology:17 Anesthesiology:12 OutreachServices:12 Surgery-Colon&Rectal:11 "
    "Surgery-Maxillofacial:11 PhysicianNotFound:11 Pediatrics-Neurology:10 Surgery-Pediatric:8 "
    "Endocrinology-Metabolism:8 Psychiatry-Child/Adolescent:7 AllergyandImmunology:7 "
    "Cardiology-Pediatric:7 DCPTEAM:6 Pediatrics-Hematology-Oncology:4 Dentistry:4 "
    "Pediatrics-EmergencyMedicine:3 Pediatrics-AllergyandImmunology:3 Resident:2 "
    "Surgery-PlasticwithinHeadandNeck:1 Pediatrics-InfectiousDiseases:1 Psychiatry-Addictive:1 "
    "Proctology:1 Dermatology:1 SportsMedicine:1 Speech:1 Perinatology:1 Neurophysiology:1 "
)
NUM_LAB_PROCEDURES = _counts(
    "1:3208 2:1101 3:668 4:378 5:286 6:282 7:323 8:366 9:933 10:838 11:689 12:506 13:404 14:336 "
    "15:461 16:544 17:743 18:730 19:977 20:763 21:676 22:694 23:836 24:744 25:1048 26:1094 27:831 "
    "28:1048 29:1340 30:1354 31:1311 32:1336 33:1297 34:1677 35:1907 36:1962 37:2079 38:2213 "
    "39:2101 40:2201 41:2117 42:2113 43:2804 44:2496 45:2376 46:2189 47:2106 48:2058 49:2066 "
    "50:1924 51:1925 52:1838 53:1802 54:1888 55:1836 56:1839 57:1747 58:1708 59:1624 60:1610 "
    "61:1638 62:1444 63:1450 64:1324 65:1238 66:1212 67:1093 68:1043 69:991 70:826 71:798 72:749 "
    "73:661 74:612 75:526 76:465 77:421 78:357 79:334 80:293 81:283 82:225 83:230 84:160 85:156 "
    "86:128 87:91 88:102 89:73 90:65 91:61 92:48 93:56 94:45 95:46 96:28 97:31 98:26 99:9 100:13 "
    "101:13 102:8 103:6 104:3 105:6 106:5 107:1 108:4 109:4 111:3 113:3 114:2 118:1 120:1 121:1 "
    "126:1 129:1 132:1 "
)
NUM_PROCEDURES = _counts("0:46652 1:20742 2:12717 3:9443 4:4180 5:3078 6:4954 ")
NUM_MEDICATIONS = _counts(
    "1:262 2:470 3:900 4:1417 5:2017 6:2699 7:3484 8:4353 9:4913 10:5346 11:5795 12:6004 13:6086 "
    "14:5707 15:5792 16:5430 17:4919 18:4523 19:4078 20:3691 21:3230 22:2868 23:2426 24:2109 "
    "25:1888 26:1608 27:1432 28:1233 29:1000 30:849 31:712 32:623 33:504 34:453 35:388 36:287 "
    "37:293 38:228 39:209 40:179 41:146 42:128 43:127 44:100 45:88 46:92 47:74 48:60 49:61 50:55 "
    "51:43 52:54 53:40 54:33 55:32 56:37 57:26 58:25 59:20 60:23 61:14 62:15 63:14 64:8 65:12 66:5 "
    "67:7 68:7 69:5 70:2 72:3 74:1 75:2 79:1 81:1 "
)
NUMBER_OUTPATIENT = _counts(
    "0:85027 1:8547 2:3594 3:2042 4:1099 5:533 6:303 7:155 8:98 9:83 10:57 11:42 12:30 13:31 14:28 "
    "15:20 16:15 17:8 18:5 19:3 20:7 21:7 22:5 23:2 24:3 25:2 26:2 27:3 28:1 29:2 33:2 34:1 35:2 "
    "36:2 37:1 38:1 39:1 40:1 42:1 "
)
NUMBER_EMERGENCY = _counts(
    "0:90383 1:7677 2:2042 3:725 4:374 5:192 6:94 7:73 8:50 9:33 10:34 11:23 12:10 13:12 14:3 15:3 "
    "16:5 18:5 19:4 20:4 21:2 22:6 24:1 25:2 28:1 29:1 37:1 42:1 46:1 54:1 63:1 64:1 76:1 "
)
_NUMBER_INPATIENT = _counts(
    "0:67630 1:19521 2:7566 3:3411 4:1622 5:812 6:480 7:268 8:151 9:111 10:61 11:49 12:34 13:20 "
    "14:10 15:9 16:6 17:1 18:1 19:2 21:1 "
)
NUMBER_DIAGNOSES = _counts(
    "1:219 2:1023 3:2835 4:5537 5:11393 6:10161 7:10393 8:10616 9:49474 10:17 11:11 12:9 13:16 14:7 "
    "15:10 16:45 "
)
MAX_GLU_SERUM = _counts("None:96420 Norm:2597 >200:1485 >300:1264 ")
A1CRESULT = _counts("None:84748 >8:8216 Norm:4990 >7:3812 ")
AGE = _counts(
    "[70-80):26068 [60-70):22483 [50-60):17256 [80-90):17197 [40-50):9685 [30-40):3775 "
    "[90-100):2793 [20-30):1657 [10-20):691 [0-10):161 "
)
_SOURCE_TEXT_1 = (
    "7:48515 6:1995 1:1677 17:640 5:597 4:241 2:233 3:65 20:12 8:7 10:3 25:2 14:1 11:1 9:1 "
)
_SOURCE_TEXT_2 = "1:9224 7:6128 4:1822 2:509 17:211 6:181 5:131 9:119 20:117 3:25 8:7 10:5 13:1 "
_SOURCE_TEXT_3 = "1:16187 4:1068 7:931 2:323 5:110 3:94 6:82 20:32 17:23 22:12 9:5 11:1 8:1 "
_SOURCE_TEXT_4 = "4:5 7:2 1:2 14:1 "
_SOURCE_TEXT_5 = "17:2947 1:1703 7:131 4:3 6:1 "
_SOURCE_TEXT_6 = "17:2960 7:1641 1:595 4:44 2:25 5:17 6:5 3:3 8:1 "
_SOURCE_TEXT_7 = "7:21 "
_SOURCE_TEXT_8 = "1:177 7:125 2:14 4:4 "
_DRUG_COUNTS = (  # No/Steady/Up/Down per drug column
    "metformin:81778/18346/1067/575 repaglinide:100227/1384/110/45 nateglinide:101063/668/24/11 "
    "chlorpropamide:101680/79/6/1 glimepiride:96575/4670/327/194 acetohexamide:101765/1/0/0 "
    "glipizide:89080/11356/770/560 glyburide:91116/9274/812/564 tolbutamide:101743/23/0/0 "
    "pioglitazone:94438/6976/234/118 rosiglitazone:95401/6100/178/87 acarbose:101458/295/10/3 "
    "miglitol:101728/31/2/5 troglitazone:101763/3/0/0 tolazamide:101727/38/1/0 examide:101766/0/0/0 "
    "citoglipton:101766/0/0/0 insulin:47383/30849/11316/12218 glyburide-metformin:101060/692/8/6 "
    "glipizide-metformin:101753/13/0/0 glimepiride-pioglitazone:101765/1/0/0 "
    "metformin-rosiglitazone:101764/2/0/0 metformin-pioglitazone:101765/1/0/0 "
)
_TOP_DIAG_1 = (
    "428:6862 414:6581 786:4016 410:3614 486:3508 427:2766 491:2275 715:2151 682:2042 434:2028 "
    "780:2019 996:1967 276:1889 38:1688 250.8:1680 599:1595 584:1520 V57:1207 250.6:1183 518:1115 "
    "820:1082 577:1057 493:1056 435:1016 562:989 574:965 296:896 560:876 250.7:871 250.13:851 "
    "440:840 433:789 998:784 722:771 250.02:675 578:663 250.11:625 507:610 789:561 453:546 530:531 "
    "8:515 403:513 535:450 402:449 415:449 295:447 724:440 458:426 162:425 997:424 250.12:417 "
    "250.82:412 278:379 733:367 285:365 592:350 401:346 482:339 590:335 "
)
_TOP_DIAG_2 = (
    "276:6752 428:6662 250:6071 427:5036 401:3736 496:3305 599:3288 403:2823 414:2650 411:2566 "
    "250.02:2074 707:1999 585:1871 584:1649 491:1545 250.01:1523 285:1520 780:1491 425:1434 "
    "682:1433 486:1379 518:1355 424:1071 413:1042 250.6:895 493:881 305:702 786:644 280:606 998:571 "
    "410:549 511:519 785:516 38:475 996:454 272:420 571:414 197:410 V45:408 295:408 440:406 577:401 "
    "162:401 560:394 788:389 997:381 41:379 578:350 574:346 453:346 789:343 648:338 402:335 198:320 "
    "799:315 287:311 426:301 530:290 303:287 70:273 "
)
_TOP_DIAG_3 = (
    "250:11555 401:8289 276:5175 428:4577 427:3955 414:3664 496:2605 403:2357 585:1992 272:1969 "
    "599:1941 V45:1389 250.02:1369 707:1360 780:1334 285:1200 425:1136 250.6:1080 424:1063 584:963 "
    "305:924 250.01:915 682:887 518:854 41:727 493:694 278:680 530:625 786:584 491:574 486:568 "
    "244:540 V58:501 250.4:429 411:399 280:398 357:394 785:388 287:388 197:385 511:380 402:375 "
    "787:358 788:353 412:346 593:339 V15:334 413:329 438:318 998:316 250.8:316 294:315 799:312 "
    "571:310 560:306 295:305 995:299 997:298 789:290 535:285 "
)
_TAIL_DIAG = (
    "730:662 536:615 404:589 784:572 569:568 250.03:568 790:563 558:551 250.41:518 V42:507 331:485 "
    "112:480 300:478 466:475 153:473 515:443 396:438 263:435 492:423 202:408 250.92:402 342:395 "
    "591:392 443:391 348:379 572:373 531:372 284:367 781:365 728:364 304:362 553:359 824:356 "
    "311:356 564:354 250.1:350 729:345 196:343 V43:342 V10:340 416:334 250.81:330 600:324 "
    "250.42:323 575:322 812:306 444:306 710:299 552:298 805:294 721:293 286:287 288:280 782:277 "
    "E878:277 532:273 E849:273 V12:271 292:268 V85:265 211:257 459:254 185:251 557:247 437:246 "
    "719:241 E888:240 157:237 E885:229 618:226 681:226 576:226 441:224 218:224 340:224 397:223 "
    "174:217 290:216 595:213 293:213 540:211 731:210 250.22:209 291:208 436:208 455:207 204:206 "
    "135:206 189:201 808:201 490:199 596:196 794:196 581:196 398:195 431:195 345:195 250.51:195 "
    "242:193 203:192 274:190 386:187 332:186 250.5:184 V54:181 465:174 275:172 567:172 537:172 "
    "821:171 723:166 807:165 568:163 255:162 714:162 79:161 625:160 282:159 337:159 301:157 "
    "250.83:154 716:153 42:153 154:152 726:152 823:151 327:140 573:139 253:139 456:138 346:138 "
    "188:137 487:137 626:136 429:135 711:134 250.2:134 250.52:134 277:133 309:133 344:132 852:129 "
    "512:129 447:128 813:125 432:124 642:124 298:122 250.43:121 473:119 924:119 583:118 238:115 "
    "182:114 481:114 423:113 53:112 566:111 783:110 519:109 E932:109 654:107 727:105 620:105 "
    "738:104 362:104 205:104 555:103 420:99 289:99 155:99 873:97 151:96 V09:96 V62:95 478:94 V49:93 "
    "608:91 850:90 999:89 349:86 E942:86 446:83 333:82 V55:81 451:81 556:80 241:79 E879:79 959:78 "
    "516:76 150:75 802:75 616:75 281:74 969:74 611:74 442:74 550:72 199:72 614:72 V64:72 V46:71 "
    "920:70 514:68 421:68 252:68 338:68 368:67 962:66 922:65 191:64 965:64 250.53:64 617:64 860:63 "
    "659:62 358:60 283:60 220:59 183:59 E947:59 225:58 227:58 601:58 9:58 822:56 312:56 736:54 "
    "533:54 94:54 307:54 E935:54 V53:53 250.93:53 485:53 517:53 461:51 V63:51 494:50 693:50 510:49 "
    "680:49 394:49 604:47 627:47 V65:47 586:46 233:46 607:45 958:45 319:45 E880:45 E884:45 462:44 "
    "200:44 351:44 356:44 851:43 621:43 696:43 138:43 522:42 840:42 201:42 239:42 457:41 801:41 "
    "745:41 430:40 588:40 737:39 825:39 355:39 378:39 156:38 380:38 644:38 664:38 718:38 753:38 "
    "V44:38 844:37 V27:37 54:36 527:36 656:35 646:35 261:35 658:34 756:34 250.23:34 369:34 867:34 "
    "193:33 570:33 709:33 792:33 E939:33 235:32 251:32 746:32 725:32 E934:32 661:31 528:31 152:31 "
    "382:31 E944:31 V17:31 861:30 594:30 110:30 923:30 359:29 534:29 310:29 521:29 E812:29 365:28 "
    "266:28 454:28 354:28 905:28 845:27 892:27 47:27 796:27 E950:27 297:26 117:26 705:26 273:26 "
    "V08:26 579:25 565:25 480:25 V66:25 686:25 692:25 717:25 343:25 E928:25 250.33:24 335:24 598:24 "
    "250.3:24 652:24 262:24 816:24 883:24 694:23 663:23 836:23 695:23 882:23 250.9:23 34:23 847:23 "
    "945:23 208:23 279:23 V18:23 E930:23 647:22 226:22 881:22 250.32:21 972:21 513:21 853:21 791:21 "
    "967:21 747:21 891:21 317:21 V72:21 E933:21 933:20 250.21:20 501:20 810:20 389:20 477:20 713:20 "
    "383:19 306:19 323:19 260:19 934:18 171:18 660:18 619:18 250.91:18 741:18 214:17 250.31:17 "
    "464:17 376:17 989:17 172:17 991:17 793:17 865:17 916:17 508:16 475:16 864:16 V56:16 831:16 "
    "314:16 452:16 698:16 708:15 3:15 161:15 11:15 966:15 685:15 35:15 324:15 815:15 405:15 163:15 "
    "706:15 V14:15 E931:15 78:14 495:14 350:14 977:14 623:14 582:14 336:14 228:14 759:14 935:14 "
    "379:14 372:14 E936:14 907:14 158:13 751:13 641:13 5:13 843:13 179:13 136:13 524:13 299:13 "
    "758:13 701:13 712:13 E927:13 E881:13 580:12 141:12 992:12 88:12 610:12 866:12 246:12 245:12 "
    "952:12 318:12 40:12 E816:12 388:11 320:11 826:11 180:11 341:11 195:11 921:11 131:11 500:11 "
    "649:11 E937:11 909:11 868:10 184:10 913:10 353:10 230:10 223:10 917:10 445:10 470:10 240:10 "
    "806:10 V70:10 704:10 910:10 E870:10 E917:10 E819:10 968:9 366:9 212:9 395:9 970:9 322:9 506:9 "
    "463:9 483:9 800:9 V71:9 814:9 541:9 862:9 665:9 V16:9 E887:9 750:9 655:8 622:8 551:8 964:8 "
    "215:8 377:8 360:8 684:8 529:8 66:8 605:8 E858:8 E929:8 742:8 V02:8 E906:8 270:8 82:7 210:7 "
    "942:7 237:7 643:7 308:7 720:7 797:7 334:7 526:7 192:7 373:7 31:7 893:7 906:7 890:7 734:7 854:7 "
    "795:7 842:7 603:7 543:7 919:7 258:7 V23:7 V61:7 259:7 E941:7 472:7 E938:7 49:6 374:6 361:6 "
    "863:6 474:6 170:6 V60:6 703:6 173:6 674:6 448:6 653:6 27:6 175:6 602:6 347:6 870:6 915:6 271:6 "
    "523:6 542:6 422:6 752:6 908:6 E905:6 V13:6 E850:6 256:6 V03:6 7:5 217:5 987:5 911:5 983:5 "
    "846:5 164:5 835:5 75:5 928:5 146:5 980:5 879:5 417:5 645:5 837:5 484:5 E924:5 E916:5 E818:5 "
    "V86:5 "
)
_DIAG_TAIL_ROWS = (
    25_137,
    21_355,
    23_032,
)  # rows of diag_1/2/3 outside their top 60 codes (not "?")


# --------------------------------------------------------------------------------------------------
# Derived tables, and the effect sizes of the readmission model (chosen, then checked: the label
# share matches the real file and a plain model reaches ROC AUC ~0.7; see tests/data).

_HEART_FAILURE, _CIRCULATORY, _RESPIRATORY, _DIGESTIVE, _DIABETES = 0, 1, 2, 3, 4
_INJURY, _MUSCULOSKELETAL, _GENITOURINARY, _NEOPLASMS, OTHER_GROUP = 5, 6, 7, 8, 9
DIAG_GROUP_EFFECT = np.array([0.30, 0.05, 0.0, 0.0, 0.10, 0.05, -0.25, 0.0, 0.35, 0.10])


def _diag_group(code: str) -> int:
    """ICD-9 chapter groups as in Strack et al. (2014), with heart failure (428) on its own."""
    if code.startswith(("V", "E")):
        return OTHER_GROUP
    if code.startswith("250"):
        return _DIABETES
    n = int(float(code))
    ranges = (
        (_HEART_FAILURE, ((428, 428),)),
        (_CIRCULATORY, ((390, 459), (785, 785))),
        (_RESPIRATORY, ((460, 519), (786, 786))),
        (_DIGESTIVE, ((520, 579), (787, 787))),
        (_INJURY, ((800, 999),)),
        (_MUSCULOSKELETAL, ((710, 739),)),
        (_GENITOURINARY, ((580, 629), (788, 788))),
        (_NEOPLASMS, ((140, 239),)),
    )
    return next((g for g, spans in ranges if any(a <= n <= b for a, b in spans)), OTHER_GROUP)


def _diag_table(top: str, tail_rows: int, primary: bool) -> _Table:
    """A column's own top codes, then the pooled tail of all three columns in this column's share.

    External-cause codes (E8xx/E9xx) stay out of ``diag_1``: the real file has a single one there.
    """
    head, tail = _counts(top), _counts(_TAIL_DIAG)
    keep = ~np.isin(tail.values, head.values)
    if primary:
        keep &= np.array([not code.startswith("E") for code in tail.values])
    tail_weights = tail.weights[keep] * (tail_rows / tail.weights[keep].sum())
    table = _Table([*head.values, *tail.values[keep]], [*head.weights, *tail_weights])
    table.groups = np.array([_diag_group(code) for code in table.values], dtype=np.int64)
    return table


DIAG = (
    _diag_table(_TOP_DIAG_1, _DIAG_TAIL_ROWS[0], primary=True),
    _diag_table(_TOP_DIAG_2, _DIAG_TAIL_ROWS[1], primary=False),
    _diag_table(_TOP_DIAG_3, _DIAG_TAIL_ROWS[2], primary=False),
)
_SOURCE_TEXT = {
    "1": _SOURCE_TEXT_1, "2": _SOURCE_TEXT_2, "3": _SOURCE_TEXT_3, "4": _SOURCE_TEXT_4,
    "5": _SOURCE_TEXT_5, "6": _SOURCE_TEXT_6, "7": _SOURCE_TEXT_7, "8": _SOURCE_TEXT_8,
}  # fmt: skip
SOURCE_GIVEN_TYPE = tuple(_counts(_SOURCE_TEXT[t]) for t in ADMISSION_TYPE_ID.values)
DRUGS = {
    name: _Table(list(DRUG_VALUES), [float(c) for c in counts.split("/")])
    for name, _, counts in (item.partition(":") for item in _DRUG_COUNTS.split())
}
assert tuple(DRUGS) == DRUG_COLUMNS
DRUG_TEXT = np.array(DRUG_VALUES, dtype=object)
LABELS = np.array(["NO", ">30", "<30"], dtype=object)
AGE_BRACKETS = np.array([f"[{10 * i}-{10 * i + 10})" for i in range(10)], dtype=object)
AGE_LOWER = np.array([float(v[1:].split("-")[0]) for v in AGE.values])

# Discharge: (frailty, per-decade-over-65) tilts; the base is deflated by the tilts' mean.
_DISCHARGE_TILT = {
    "1": (-0.10, -0.15), "2": (0.30, 0.0), "3": (0.35, 0.45), "5": (0.30, 0.0), "6": (0.20, 0.25),
    "11": (0.60, 0.35), "13": (0.50, 0.40), "14": (0.50, 0.40), "22": (0.25, 0.20),
}  # fmt: skip
DISCHARGE_FRAILTY = np.array(
    [_DISCHARGE_TILT.get(v, (0, 0))[0] for v in DISCHARGE_DISPOSITION_ID.values]
)
DISCHARGE_AGE = np.array(
    [_DISCHARGE_TILT.get(v, (0, 0))[1] for v in DISCHARGE_DISPOSITION_ID.values]
)
DISCHARGE_BASE = DISCHARGE_DISPOSITION_ID.weights / (
    np.exp(DISCHARGE_FRAILTY**2 / 2)  # E[exp(b * score)], score ~ N(0, 1)
    * (  # E[exp(g * decades over 65)] over the real age brackets (midpoints)
        np.diff(AGE.cum, prepend=0.0)[:, None]
        * np.exp(DISCHARGE_AGE[None, :] * ((AGE_LOWER[:, None] + 5.0 - 65.0) / 10.0))
    ).sum(axis=0)
)
DEATH_IDS = np.array([11, 19, 20, 21])  # expired: never readmitted, never back
DISCHARGE_EFFECT = np.zeros(31)  # by discharge_disposition_id
for _id, _effect in {
    2: 0.45, 3: 0.35, 4: 0.20, 5: 0.70, 6: 0.20, 7: 0.35, 13: -1.0, 14: -0.6, 15: 0.60, 22: 1.0,
    28: 0.60,
}.items():  # fmt: skip
    DISCHARGE_EFFECT[_id] = _effect
INSULIN_EFFECT = np.array([0.0, 0.05, 0.20, 0.20])  # No, Steady, Up, Down
RETURN_PROBABILITY = np.array([0.04, 0.53, 0.48])  # by label NO, >30, <30 (mean frailty)
# Prior-year inpatient visits are at least the simulated ones, so the base draw needs more zeros.
_INPATIENT_ZERO_BOOST = 2.7
INPATIENT_BASE = _Table(
    list(_NUMBER_INPATIENT.values),
    [
        w * (_INPATIENT_ZERO_BOOST if v == "0" else 1.0)
        for v, w in zip(_NUMBER_INPATIENT.values, _NUMBER_INPATIENT.weights, strict=True)
    ],
)
B0_30 = -3.09  # intercepts: set so the label shares match the real file (11.2% <30, 34.9% >30)
B0_LATER = -0.75
RETURN_FRAILTY = 0.7  # log-odds-like tilt of the return probability per unit of frailty
Z_ENCOUNTER_MEAN = 0.30  # frailty over encounters (measured on 101,766 rows)
Z_ENCOUNTER_SD = 1.075
